"""tests.asgi with a slow, scripted answer writer, for the two-process test's servers.

``sophie_chat.ai.pipeline.reply`` is our own seam: replacing it here makes every answer stream
in many small pieces, slowly enough that both tabs are connected while it streams.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from importlib import import_module
from typing import Any

# Django must be set up (by tests.asgi) before anything imports the models.
application = import_module("tests.asgi").application

PIECES = 30
DELAY = float(os.environ.get("SLOW_ASGI_DELAY", "0.02"))  # seconds between pieces


async def slow_reply(turn: Any) -> AsyncIterator[Any]:
    from sophie_chat.ai.base import Delta, Reply

    pieces = [f"{'' if i == 0 else ' '}p{i}-{turn.text}" for i in range(PIECES)]
    for piece in pieces:
        await asyncio.sleep(DELAY)
        yield Delta(piece)
    yield Reply(text="".join(pieces), source="ai", model="slow")


import_module("sophie_chat.ai.pipeline").reply = slow_reply

__all__ = ["application"]
