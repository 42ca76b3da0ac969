from __future__ import annotations

from django.urls import path

from sophie_chat import views

app_name = "sophie_chat"

urlpatterns: list = [
    path("health/", views.health, name="health"),
]
