"""A chat session is created by its first message: one unit, one active session per owner."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sophie_chat.conversation.creation import NewSession, create_with_message_sync
from sophie_chat.conversation.manager import Owner, open_session_sync
from sophie_chat.models import ChatMessage, ChatSession
from tests.conversation.conftest import statements as without_transactions

pytestmark = pytest.mark.django_db(transaction=True)

VISITOR = Owner(visitor_key="v" * 32)
NEW = NewSession(user_type="anonymous", language="pt-br", context={"page": {"url": "/ajuda/"}})


def _create(owner: Owner = VISITOR, text: str = "oi", client_id: str | None = None) -> Any:
    return create_with_message_sync(
        owner,
        NEW,
        client_id=client_id or str(uuid.uuid4()),
        text=text,
        metadata={"intent": "other"},
        context=NEW.context,
        history_size=10,
    )


def test_the_first_message_creates_its_session_with_both_rows() -> None:
    with CaptureQueriesContext(connection) as queries:
        stored = _create(text="primeira")
    # One statement on PostgreSQL; the session's INSERT and the messages' INSERT elsewhere.
    # No history read: a new session has none.
    statements = without_transactions(queries)
    assert len(statements) == (1 if connection.vendor == "postgresql" else 2), statements
    assert not [q for q in queries.captured_queries if "SAVEPOINT" in q["sql"]]
    assert (stored.created, stored.seq, stored.reply_seq, stored.history) == (True, 1, 2, [])
    session = ChatSession.objects.get(pk=stored.session_id)
    assert (session.status, session.visitor_key, session.user_id, session.last_seq) == (
        "active",
        "v" * 32,
        None,
        2,
    )
    assert (session.user_type, session.language, session.context) == (
        "anonymous",
        "pt-br",
        {"page": {"url": "/ajuda/"}},
    )
    rows = list(
        ChatMessage.objects.filter(session=session)
        .order_by("seq")
        .values_list("seq", "sender", "content", "metadata")
    )
    assert rows == [
        (1, "user", "primeira", {"intent": "other"}),
        (2, "assistant", "", {"status": "streaming"}),
    ]
    assert stored.message["id"] == str(ChatMessage.objects.get(session=session, seq=1).client_id)
    assert stored.created_at == session.created_at.isoformat()


def test_a_first_message_after_another_tab_created_the_session_goes_into_it() -> None:
    first = _create(text="da primeira aba")
    second = _create(text="da segunda aba")  # its tab still had no session
    assert (second.created, second.session_id, second.seq) == (False, first.session_id, 3)
    assert second.history == [("user", "da primeira aba")]
    assert ChatSession.objects.filter(visitor_key="v" * 32).count() == 1


def test_a_resend_of_a_first_message_is_acknowledged_not_stored_again() -> None:
    cid = str(uuid.uuid4())
    first = _create(client_id=cid)
    again = _create(client_id=cid)
    assert (again.duplicate, again.seq, again.session_id) == (True, 1, first.session_id)
    assert ChatMessage.objects.count() == 2


def test_a_stale_active_session_is_expired_and_replaced(settings: Any) -> None:
    old = open_session_sync(VISITOR, language="pt-br")
    idle = timezone.now() - timedelta(seconds=settings.CHAT_CONFIG.get("SESSION_TTL", 86400) + 5)
    ChatSession.objects.filter(pk=old.id).update(last_activity_at=idle)
    stored = _create()
    assert (stored.created, stored.notice) == (True, "expired")
    assert stored.session_id != old.id
    assert ChatSession.objects.get(pk=old.id).status == "expired"


def test_owners_do_not_share_sessions(user_factory: Any) -> None:
    user = user_factory()
    sessions = {
        _create(VISITOR).session_id,
        _create(Owner(visitor_key="w" * 32)).session_id,
        _create(Owner(user_id=user.pk)).session_id,
    }
    assert len(sessions) == 3
    assert ChatSession.objects.get(user=user).visitor_key == ""


@pytest.mark.parametrize("owner", ["visitor", "user"])
def test_racing_first_messages_end_in_one_session(user_factory: Any, owner: str) -> None:
    """Eight tabs of one owner, each with its own database connection, send their first
    message at once: one session, every message in it, no seq shared."""
    who = VISITOR if owner == "visitor" else Owner(user_id=user_factory().pk)
    barrier = threading.Barrier(8)
    results: list[Any] = []
    errors: list[BaseException] = []

    def tab(n: int) -> None:
        try:
            barrier.wait()
            results.append(_create(who, text=f"aba {n}"))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=tab, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len({r.session_id for r in results}) == 1
    assert [r.created for r in results].count(True) == 1
    assert sorted(r.seq for r in results) == list(range(1, 16, 2))
    session = ChatSession.objects.get(pk=results[0].session_id)
    assert (session.status, session.last_seq) == ("active", 16)
    assert ChatSession.objects.filter(who.q()).count() == 1
    texts = ChatMessage.objects.filter(session=session, sender="user").values_list(
        "content", flat=True
    )
    assert sorted(texts) == [f"aba {n}" for n in range(8)]


def test_a_connect_without_a_session_stores_nothing(user_factory: Any, settings: Any) -> None:
    settings.CHAT_CONFIG = {
        **settings.CHAT_CONFIG,
        "USER_CONTEXT_PROVIDER": "tests.conversation.test_manager.profile",
    }
    user = user_factory(is_staff=True)
    state = open_session_sync(Owner(user_id=user.pk), user=user, language="en", create=False)
    assert state.id is None
    assert (state.status, state.new, state.last_seq) == ("active", True, 0)
    assert (state.user_type, state.language) == ("staff", "en")
    assert state.context == {"user": {"first_name": "Ana", "city": "Recife"}}
    assert not ChatSession.objects.exists()
