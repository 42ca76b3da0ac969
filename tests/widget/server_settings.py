"""Settings of the browser tests' server subprocess: the test settings on a private SQLite file.

``SOPHIE_WIDGET_DB`` names the database file; ``SOPHIE_WIDGET_CHAT_CONFIG`` (JSON) is merged
over the test ``CHAT_CONFIG`` (for example to point the OpenAI backend at the loopback server).
"""

from __future__ import annotations

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import CHAT_CONFIG as _BASE_CHAT_CONFIG

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SOPHIE_WIDGET_DB", "sophie-widget.sqlite3"),
        # Two processes (the test and the server) share the file.
        "OPTIONS": {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"},
    }
}
CHAT_CONFIG = {**_BASE_CHAT_CONFIG, **json.loads(os.environ.get("SOPHIE_WIDGET_CHAT_CONFIG", "{}"))}
