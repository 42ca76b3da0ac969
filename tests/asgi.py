from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from sophie_chat.routing import get_asgi_application

application = get_asgi_application()
