"""An admin site with the knowledge base admin, for tests that must not depend on admin.py."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from sophie_chat.knowledge.admin import KnowledgeBaseEntryAdmin
from sophie_chat.models import KnowledgeBaseEntry

site = admin.AdminSite(name="admin")
site.register(KnowledgeBaseEntry, KnowledgeBaseEntryAdmin)

urlpatterns = [path("admin/", site.urls)]
