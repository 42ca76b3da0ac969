"""Through the real consumer: a chat turn lands in the analytics, escalates, and is counted."""
# ruff: noqa: F811 - fixtures imported from tests/conversation/conftest.py are parameters here

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from prometheus_client import REGISTRY

from sophie_chat.models import ChatAnalytics, ChatSession
from tests.conversation.conftest import (  # noqa: F401 - fixtures
    _fresh_limits,
    anonymous_session,
    chat,
    chat_config,
    fake_ai,
)

pytestmark = pytest.mark.django_db(transaction=True)

CONTACT = {"email": "ajuda@example.com", "phone": "", "whatsapp": "", "hours": "", "url": ""}


def gauge() -> float:
    return REGISTRY.get_sample_value("sophie_chat_active_connections") or 0.0


@database_sync_to_async
def stored(session_id: str) -> tuple[ChatSession, ChatAnalytics]:
    return ChatSession.objects.get(pk=session_id), ChatAnalytics.objects.get(session_id=session_id)


async def test_turns_escalation_and_counters(chat: Any, chat_config: Any, fake_ai: Any) -> None:
    chat_config(SUPPORT_CONTACT=CONTACT)
    before = gauge()
    c = await chat()
    assert gauge() == before + 1
    _, done = await c.turn("Quanto custa uma faxina?")
    assert "escalation" not in done or done["escalation"] is None
    _, done = await c.turn("Isso não resolve nada, quero falar com um atendente")
    assert done["escalation"]["reason"] == "human_request"
    assert done["escalation"]["contacts"]["email"] == "ajuda@example.com"
    session, counters = await stored(c.session["session_id"])
    assert session.escalated is True
    assert session.escalation_reason == "human_request"
    assert counters.user_messages == 2
    assert counters.assistant_messages == 2
    assert counters.ai_answers == 2
    assert counters.resolved is False
    await c.comm.disconnect()
    assert gauge() == before
