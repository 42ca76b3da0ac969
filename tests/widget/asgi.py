"""The test project's ASGI application plus static files, for the browser tests' server."""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.widget.server_settings")
# Set up before importing the routing: importing it pulls in models.
django.setup()

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from tests.asgi import application as _chat_application  # noqa: E402

application = ASGIStaticFilesHandler(_chat_application)
