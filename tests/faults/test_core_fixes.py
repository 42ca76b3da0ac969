# ruff: noqa: F811 - fixtures imported from tests/conversation/conftest.py are parameters here
"""Fast, in-process tests of the defects the fault suites found (the suites show them end to
end against a real server process)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from sophie_chat.conversation.manager import ChatManager, Owner
from sophie_chat.models import ChatMessage, ChatSession
from tests.conversation.conftest import _fresh_limits, chat, chat_config  # noqa: F401 - fixtures


def _reply(session: ChatSession, seq: int, age: float) -> ChatMessage:
    message = ChatMessage.objects.create(
        session=session, seq=seq, sender="assistant", content="", metadata={"status": "streaming"}
    )
    ChatMessage.objects.filter(pk=message.pk).update(
        created_at=timezone.now() - timedelta(seconds=age)
    )
    return message


@pytest.mark.django_db(transaction=True)
def test_resume_reports_a_dead_workers_reply_as_incomplete(settings: Any) -> None:
    """A client that stays connected asks again with ``resume``: it must see the dead reply end.

    Before the fix only a new connection (``open_session``) marked it, so the widget's catch-up
    saw "streaming" for as long as the tab stayed open.
    """
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "OPENAI_TIMEOUT": 5.0}
    owner = Owner(visitor_key="v" * 32)
    session = ChatSession.objects.create(visitor_key=owner.visitor_key, last_seq=4)
    dead, live = _reply(session, 2, age=11), _reply(session, 4, age=1)

    messages, _more = async_to_sync(ChatManager.messages_after)(owner, session.id, 0)

    assert [(m["seq"], m["status"]) for m in messages] == [(2, "incomplete"), (4, "streaming")]
    dead.refresh_from_db()
    live.refresh_from_db()
    assert dead.metadata["status"] == "incomplete"
    assert live.metadata["status"] == "streaming"


QUESTIONS = ["como pago um servico?", "posso cancelar uma reserva?", "onde vejo meus pedidos?"]


@pytest.mark.django_db(transaction=True)
async def test_offline_answers_do_not_count_as_failures_for_escalation(
    chat: Any, chat_config: Any
) -> None:
    """Offline mode (no key) answers every message with source "fallback" on purpose: that is
    the product working, not failing, and must not hand the visitor to a human."""
    chat_config(ESCALATION_FALLBACK_THRESHOLD=2, RATE_LIMIT="100/m")
    c = await chat()
    for question in QUESTIONS:
        _ack, done = await c.turn(question)
        assert done["source"] == "fallback"
        assert not done.get("degraded")
        assert "escalation" not in done, question


@pytest.mark.django_db(transaction=True)
async def test_degraded_fallbacks_in_a_row_still_escalate(
    chat: Any, chat_config: Any, openai_server: Any
) -> None:
    openai_server.configure(status=500)
    chat_config(ESCALATION_FALLBACK_THRESHOLD=2, RATE_LIMIT="100/m", OPENAI_MAX_RETRIES=0)
    c = await chat()
    _ack, first = await c.turn(QUESTIONS[0])
    _ack, second = await c.turn(QUESTIONS[1])
    assert first["degraded"]
    assert "escalation" not in first
    assert second["degraded"]
    assert second["escalation"]["reason"] == "repeated_fallback"
