"""The chat's ASGI application plus static files, for the browser tests' server subprocess.

``DJANGO_SETTINGS_MODULE`` picks the site: the test project or the example marketplace.
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.widget.server_settings")
# Set up before importing the routing: importing it pulls in models.
django.setup()

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from sophie_chat.routing import get_asgi_application  # noqa: E402

application = ASGIStaticFilesHandler(get_asgi_application())
