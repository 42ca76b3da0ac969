from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("chat/", include("sophie_chat.urls")),
    path("widget-test/", include("tests.testapp.widget_urls")),
]
