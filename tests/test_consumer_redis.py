"""The Redis channel layer keeps idle sockets alive (django/channels_redis#422 regression)."""
# ruff: noqa: F811 - fixtures imported from tests/conversation/conftest.py are parameters here

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from channels.db import database_sync_to_async

from sophie_chat.layers import redis_channel_layer
from tests.conversation.conftest import (  # noqa: F401 - fixtures
    _fresh_limits,
    chat,
    chat_config,
    fake_ai,
)

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.mark.slow
async def test_idle_socket_on_the_redis_layer_still_gets_replies(
    chat: Any, fake_ai: Any, user_factory: Any, settings: Any
) -> None:
    """Under redis-py 8 defaults the layer's 5 s blocking read timed out and the consumer died."""
    settings.CHANNEL_LAYERS = {"default": redis_channel_layer(REDIS_URL, prefix="sophie-idle")}
    user = await database_sync_to_async(user_factory)()
    idle = await chat(user=user)
    other = await chat(user=user)
    await other.turn("a primeira mensagem cria a sessão")
    await idle.until("session", session_id=other.session["session_id"])  # the idle tab follows
    await asyncio.sleep(11)  # longer than the layer's blocking pop and redis-py's read timeout
    # Frames reach the idle socket through the channel layer...
    _ack, done = await other.turn("alguém aí?")
    relayed = await idle.until("assistant.done", seq=done["seq"])
    assert relayed["text"] == done["text"]
    # ...and it still answers its own messages.
    _, own = await idle.turn("sim, eu")
    assert own["status"] == "complete"
    assert (await other.until("assistant.done", seq=own["seq"]))["text"] == own["text"]
