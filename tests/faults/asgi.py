"""TEST-ONLY ASGI application of the fault suites: the chat plus a debug endpoint.

Never part of the package. ``GET /_faults/state`` reports the server process's asyncio tasks and
running replies (to prove an abandoned reply leaves nothing behind); ``POST /_faults/visitor``
makes an anonymous visitor's Django session and returns its key (the widget's template tag does
this on a real page).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.faults.settings")
django.setup()

from channels.db import database_sync_to_async  # noqa: E402

from sophie_chat.conversation import service  # noqa: E402
from sophie_chat.routing import get_asgi_application  # noqa: E402

_chat = get_asgi_application()


@database_sync_to_async
def _new_visitor() -> str:
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store["faults"] = True
    store.create()
    return str(store.session_key)


async def _debug(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] == "/_faults/visitor" and scope["method"] == "POST":
        body: dict[str, Any] = {"key": await _new_visitor()}
    elif scope["path"] == "/_faults/state":
        # Let callbacks of just-finished work run before counting.
        await asyncio.sleep(0.05)
        body = {"tasks": len(asyncio.all_tasks()), "replies": len(service._RUNNING)}
    else:
        body = {"error": "not found"}
    data = json.dumps(body).encode()
    status = 404 if "error" in body else 200
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"].startswith("/_faults/"):
        await _debug(scope, receive, send)
        return
    await _chat(scope, receive, send)
