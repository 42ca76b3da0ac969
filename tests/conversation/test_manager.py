"""ChatManager: race-free seqs, idempotent store, ownership, expiry, ratings."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from sophie_chat.conversation.manager import (
    ChatManager,
    Owner,
    SessionEnded,
    open_session_sync,
    store_user_message_sync,
)
from sophie_chat.models import ChatMessage, ChatSession


def _store(owner: Owner, session_id: Any, text: str = "oi", client_id: str | None = None) -> Any:
    return store_user_message_sync(
        owner,
        session_id,
        client_id=client_id or str(uuid.uuid4()),
        text=text,
        metadata={"intent": "other"},
        history_size=10,
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_share_a_seq(user_factory: Any) -> None:
    """Eight threads, each with its own database connection, store into one session at once."""
    owner = Owner(user_id=user_factory().pk)
    session = open_session_sync(owner, language="pt-br")
    barrier = threading.Barrier(8)
    results: list[int] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            barrier.wait()
            for _ in range(5):
                results.append(_store(owner, session.id).seq)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert sorted(results) == list(range(1, 80, 2))
    seqs = list(ChatMessage.objects.filter(session_id=session.id).values_list("seq", flat=True))
    assert sorted(seqs) == list(range(1, 81))
    assert ChatSession.objects.get(pk=session.id).last_seq == 80


@pytest.mark.django_db(transaction=True)
def test_a_message_stored_while_another_waits_is_in_its_history(user_factory: Any) -> None:
    """A stores a message and holds its transaction; B waits for the session's row lock. On
    PostgreSQL B's statement snapshot predates A's commit: B must still see A's message."""
    from django.db import transaction

    owner = Owner(user_id=user_factory().pk)
    session = open_session_sync(owner, language="pt-br")
    stored = threading.Event()
    release = threading.Event()
    seen: list[Any] = []

    def writer_a() -> None:
        try:
            with transaction.atomic():
                _store(owner, session.id, "primeira")
                stored.set()
                release.wait(10)
        finally:
            connection.close()

    def writer_b() -> None:
        try:
            stored.wait(10)
            seen.append(_store(owner, session.id, "segunda"))
        finally:
            connection.close()

    a, b = threading.Thread(target=writer_a), threading.Thread(target=writer_b)
    a.start()
    b.start()
    b.join(0.5)  # B is now blocked on A's row lock
    assert b.is_alive()
    release.set()
    a.join(10)
    b.join(10)
    assert seen[0].seq == 3
    assert seen[0].history == [("user", "primeira")]


@pytest.mark.django_db(transaction=True)
def test_store_is_idempotent_and_reserves_the_reply(user_factory: Any) -> None:
    owner = Owner(user_id=user_factory().pk)
    session = open_session_sync(owner, language="pt-br")
    cid = str(uuid.uuid4())
    first = _store(owner, session.id, "primeira", cid)
    assert (first.seq, first.reply_seq, first.duplicate) == (1, 2, False)
    again = _store(owner, session.id, "primeira", cid)
    assert (again.seq, again.duplicate) == (1, True)
    placeholder = ChatMessage.objects.get(session_id=session.id, seq=2)
    assert placeholder.sender == "assistant"
    assert placeholder.metadata == {"status": "streaming"}
    second = _store(owner, session.id, "segunda")
    assert second.seq == 3
    assert second.history == [("user", "primeira")]  # the empty placeholder is not history


@pytest.mark.django_db(transaction=True)
def test_other_owners_cannot_touch_a_session(user_factory: Any) -> None:
    a = Owner(user_id=user_factory().pk)
    b = Owner(user_id=user_factory().pk)
    visitor = Owner(visitor_key="k" * 32)
    session = open_session_sync(a, language="pt-br")
    _store(a, session.id)
    for other in (b, visitor, Owner(visitor_key="")):
        with pytest.raises(SessionEnded) as info:
            _store(other, session.id)
        assert info.value.status == "gone"
    assert ChatMessage.objects.filter(session_id=session.id).count() == 2


@pytest.mark.django_db(transaction=True)
async def test_other_owners_cannot_read_rate_or_close(user_factory: Any) -> None:
    from channels.db import database_sync_to_async

    a = Owner(user_id=(await database_sync_to_async(user_factory)()).pk)
    b = Owner(user_id=(await database_sync_to_async(user_factory)()).pk)
    state = await ChatManager.open_session(a, language="pt-br")
    await database_sync_to_async(_store)(a, state.id)
    assert (await ChatManager.history(b, state.id, 100, 10))[0] == []
    assert (await ChatManager.messages_after(b, state.id, 0))[0] == []
    assert await ChatManager.get(b, state.id) is None
    assert await ChatManager.rate(b, state.id, 1, "") == "not_found"
    assert await ChatManager.close(b, state.id) is False
    assert await ChatManager.update_context(b, state.id, {"page": {}}) is False
    assert len((await ChatManager.history(a, state.id, 100, 10))[0]) == 2
    assert await ChatManager.rate(a, state.id, 4, "ok") == "ok"
    assert await ChatManager.close(a, state.id) is True


@pytest.mark.django_db(transaction=True)
def test_expired_sessions_are_not_resumed(user_factory: Any, settings: Any) -> None:
    owner = Owner(user_id=user_factory().pk)
    session = open_session_sync(owner, language="pt-br")
    _store(owner, session.id)
    old = timezone.now() - timedelta(seconds=settings.CHAT_CONFIG.get("SESSION_TTL", 86400) + 5)
    ChatSession.objects.filter(pk=session.id).update(last_activity_at=old)
    with pytest.raises(SessionEnded) as info:
        _store(owner, session.id)
    assert info.value.status == "expired"
    # Marked so by the store itself (not rolled back with its transaction).
    assert ChatSession.objects.get(pk=session.id).status == "expired"
    assert ChatSession.objects.get(pk=session.id).closed_at is not None
    fresh = open_session_sync(owner, language="pt-br")
    assert fresh.id != session.id
    assert fresh.new
    assert ChatSession.objects.get(pk=session.id).status == "expired"
    # An expired session can no longer be rated.
    ChatSession.objects.filter(pk=fresh.id).update(status="expired")


@pytest.mark.django_db(transaction=True)
def test_anonymous_visitor_sessions(db: None) -> None:
    visitor = Owner(visitor_key="v" * 32)
    state = open_session_sync(visitor, language="en")
    row = ChatSession.objects.get(pk=state.id)
    assert (row.user_id, row.visitor_key, row.user_type, row.language) == (
        None,
        "v" * 32,
        "anonymous",
        "en",
    )
    assert open_session_sync(visitor, language="en").id == state.id
    assert open_session_sync(Owner(visitor_key="w" * 32), language="en").id != state.id


def provider_type(user: Any) -> str:
    return "provider"


def profile(user: Any) -> dict[str, Any]:
    return {"first_name": "Ana", "city": "Recife", "email": "ana@example.com"}


@pytest.mark.django_db(transaction=True)
def test_new_sessions_use_the_site_resolvers(user_factory: Any, settings: Any) -> None:
    settings.CHAT_CONFIG = {
        **settings.CHAT_CONFIG,
        "USER_TYPE_RESOLVER": f"{__name__}.provider_type",
        "USER_CONTEXT_PROVIDER": f"{__name__}.profile",
    }
    user = user_factory()
    state = open_session_sync(Owner(user_id=user.pk), user=user, language="pt-br")
    assert state.user_type == "provider"
    # Profile facts are kept without personal data (the e-mail is dropped).
    assert state.context == {"user": {"first_name": "Ana", "city": "Recife"}}


@pytest.mark.django_db(transaction=True)
def test_open_session_returns_the_one_another_tab_created_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One active session per owner: a create that loses the race returns the winner's."""
    from sophie_chat.conversation import store

    visitor = Owner(visitor_key="v" * 32)
    winner = ChatSession.objects.create(visitor_key="v" * 32)
    real = store._active_session
    calls: list[int] = []

    def missed_it(owner: Owner) -> Any:
        calls.append(1)
        return None if len(calls) == 1 else real(owner)  # the lookup ran before the insert

    monkeypatch.setattr(store, "_active_session", missed_it)
    state = open_session_sync(visitor, language="pt-br")
    assert (state.id, state.new) == (winner.id, False)
    assert ChatSession.objects.count() == 1
