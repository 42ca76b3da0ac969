from __future__ import annotations

from django.urls import path

from sophie_chat import views

app_name = "sophie_chat"

urlpatterns: list = [
    path("health/", views.health, name="health"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("export/sessions.csv", views.export_csv, {"kind": "sessions"}, name="export_sessions"),
    path("export/messages.csv", views.export_csv, {"kind": "messages"}, name="export_messages"),
    path("metrics/", views.metrics_view, name="metrics"),
]
