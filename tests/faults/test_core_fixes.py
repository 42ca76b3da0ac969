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
