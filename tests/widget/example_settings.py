"""Settings of the example marketplace for the browser tests' server: a private SQLite file."""

from __future__ import annotations

import os

from example_project.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SOPHIE_WIDGET_DB", "sophie-widget-example.sqlite3"),
        "OPTIONS": {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"},
    }
}
