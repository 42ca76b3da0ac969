"""ASGI entry point: Django's HTTP app plus Sophie's WebSocket route, as any site installs it.

Serve it with ``uvicorn --app-dir example_project example_project.asgi:application``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# uvicorn's --app-dir covers this too; daphne and gunicorn users get the same import path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

import sophie_chat.routing

application = sophie_chat.routing.get_asgi_application()
