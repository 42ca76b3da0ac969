from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sophie_chat.analytics import notify, recorder
from sophie_chat.models import ChatAnalytics, ChatMessage, ChatSession
from sophie_chat.signals import escalated
from tests.conftest import recipient

pytestmark = pytest.mark.django_db

AI_TURN = {
    "source": "ai",
    "tokens_in": 120,
    "tokens_out": 40,
    "first_token_ms": 300,
    "response_ms": 1500,
    "intent": "pricing",
}


def test_first_turn_creates_the_row_in_one_query(chat_session_factory: Callable[..., Any]) -> None:
    session = chat_session_factory()
    with CaptureQueriesContext(connection) as queries:
        recorder.record_turn(session.pk, reply_meta=AI_TURN, user_intent="pricing")
    assert len(queries) == 1
    row = ChatAnalytics.objects.get(session=session)
    assert (row.user_messages, row.assistant_messages, row.ai_answers) == (1, 1, 1)
    assert (row.tokens_in, row.tokens_out) == (120, 40)
    assert (row.total_first_token_ms, row.total_response_ms, row.max_response_ms) == (
        300,
        1500,
        1500,
    )
    assert row.resolved is None


def test_turns_add_up(chat_session_factory: Callable[..., Any]) -> None:
    session = chat_session_factory()
    recorder.record_turn(session.pk, reply_meta=AI_TURN, user_intent="pricing")
    with CaptureQueriesContext(connection) as queries:
        recorder.record_turn(
            session.pk,
            reply_meta={"source": "cache", "first_token_ms": 5, "response_ms": 20},
            user_intent="pricing",
        )
        recorder.record_turn(
            session.pk,
            reply_meta={"source": "fallback", "error": "timeout", "response_ms": 20000},
            user_intent="other",
        )
    assert len(queries) == 2
    row = ChatAnalytics.objects.get(session=session)
    assert (row.user_messages, row.ai_answers, row.cache_answers, row.fallback_answers) == (
        3,
        1,
        1,
        1,
    )
    assert row.ai_errors == 1
    assert row.total_response_ms == 21520
    assert row.max_response_ms == 20000
    assert row.total_first_token_ms == 305


def test_escalating_turn_flags_the_session_in_two_queries(
    chat_session_factory: Callable[..., Any],
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = chat_session_factory()
    received: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        received.append(kwargs)

    escalated.connect(receiver)
    try:
        meta = {**AI_TURN, "escalation": {"reason": "frustration", "contacts": {}}}
        with (
            django_capture_on_commit_callbacks(execute=True),
            CaptureQueriesContext(connection) as queries,
        ):
            recorder.record_turn(session.pk, reply_meta=meta, user_intent="other")
        assert len(queries) == 2
    finally:
        escalated.disconnect(receiver)
    session.refresh_from_db()
    assert session.escalated is True
    assert session.escalation_reason == "frustration"
    assert ChatAnalytics.objects.get(session=session).resolved is False
    assert received[0]["session_id"] == str(session.pk)
    assert received[0]["reason"] == "frustration"


def test_escalation_email_to_managers_is_masked(
    chat_session_factory: Callable[..., Any],
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    mailoutbox: list[Any],
) -> None:
    settings.MANAGERS = [recipient("Suporte", "suporte@example.com")]
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "NOTIFY_STAFF_ON_ESCALATION": True}
    background: list[Any] = []
    monkeypatch.setattr(notify, "run_in_background", background.append)
    session = chat_session_factory()
    ChatMessage.objects.create(
        session=session, seq=1, sender="user", content="Meu CPF é 123.456.789-09, péssimo!"
    )
    meta = {**AI_TURN, "escalation": {"reason": "frustration", "contacts": {}}}
    with django_capture_on_commit_callbacks(execute=True):
        recorder.record_turn(session.pk, reply_meta=meta, user_intent="other")
    # Nothing was sent on the turn itself: the e-mail waits for the background thread.
    assert mailoutbox == []
    assert len(background) == 1
    background[0]()
    assert len(mailoutbox) == 1
    body = mailoutbox[0].body
    assert "123.456.789-09" not in body
    assert "[cpf]" in body
    assert "frustration" in mailoutbox[0].subject
    assert mailoutbox[0].to == ["suporte@example.com"]


def test_no_email_unless_configured(
    chat_session_factory: Callable[..., Any],
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    background: list[Any] = []
    monkeypatch.setattr(notify, "run_in_background", background.append)
    session = chat_session_factory()
    meta = {**AI_TURN, "escalation": {"reason": "human_request", "contacts": {}}}
    with django_capture_on_commit_callbacks(execute=True):
        recorder.record_turn(session.pk, reply_meta=meta, user_intent="human_request")
    assert background == []


def test_rate_limited_and_links(chat_session_factory: Callable[..., Any]) -> None:
    session = chat_session_factory()
    recorder.record_rate_limited(session.pk)
    recorder.record_link_click(session.pk)
    recorder.record_turn(session.pk, reply_meta=AI_TURN, user_intent="pricing")
    row = ChatAnalytics.objects.get(session=session)
    assert (row.rate_limited, row.links_clicked, row.user_messages) == (1, 1, 1)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"rating": 5}, True),
        ({"rating": 4}, True),
        ({"rating": 3}, False),
        ({"rating": 5, "escalated": True}, False),
        ({"status": "closed"}, True),
        ({"status": "closed", "escalated": True}, False),
        ({}, None),
    ],
)
def test_resolution(
    chat_session_factory: Callable[..., Any], fields: dict[str, Any], expected: bool | None
) -> None:
    session = chat_session_factory(**fields)
    recorder.on_rated(session.pk)
    assert ChatAnalytics.objects.get(session=session).resolved is expected


def test_a_second_rating_updates_the_session_and_the_resolution(
    chat_session_factory: Callable[..., Any],
) -> None:
    # The model-level behaviour the rating frame relies on: one rating per session, overwritten.
    session = chat_session_factory(status="closed")
    ChatSession.objects.filter(pk=session.pk).update(rating=2)
    recorder.on_rated(session.pk)
    assert ChatAnalytics.objects.get(session=session).resolved is False
    ChatSession.objects.filter(pk=session.pk).update(rating=5)
    recorder.on_rated(session.pk)
    assert ChatAnalytics.objects.get(session=session).resolved is True
    assert ChatSession.objects.get(pk=session.pk).rating == 5


def test_rating_outside_1_5_is_refused_by_the_database(
    chat_session_factory: Callable[..., Any],
) -> None:
    from django.db import IntegrityError, transaction

    session = chat_session_factory()
    with pytest.raises(IntegrityError), transaction.atomic():
        ChatSession.objects.filter(pk=session.pk).update(rating=6)


def test_closing_stores_intent_counts(chat_session_factory: Callable[..., Any]) -> None:
    session = chat_session_factory(status="closed")
    for seq, intent in enumerate(["pricing", "pricing", "cancel"], start=1):
        ChatMessage.objects.create(
            session=session, seq=seq, sender="user", content="?", metadata={"intent": intent}
        )
    recorder.on_session_closed(session.pk)
    row = ChatAnalytics.objects.get(session=session)
    assert row.intents == {"pricing": 2, "cancel": 1}
    assert row.resolved is True


def test_a_failing_receiver_does_not_break_the_turn_or_the_email(
    chat_session_factory: Callable[..., Any],
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "NOTIFY_STAFF_ON_ESCALATION": True}
    background: list[Any] = []
    monkeypatch.setattr(notify, "run_in_background", background.append)

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("ticket system down")

    escalated.connect(broken)
    try:
        session = chat_session_factory()
        meta = {**AI_TURN, "escalation": {"reason": "complaint", "contacts": {}}}
        with django_capture_on_commit_callbacks(execute=True):
            recorder.record_turn(session.pk, reply_meta=meta, user_intent="complaint")
    finally:
        escalated.disconnect(broken)
    assert ChatSession.objects.get(pk=session.pk).escalated is True
    assert len(background) == 1


def test_broken_alert_settings_do_not_break_the_turn(
    chat_session_factory: Callable[..., Any], settings: Any
) -> None:
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "ALERT_WINDOW": "five minutes"}
    session = chat_session_factory()
    recorder.record_turn(session.pk, reply_meta=AI_TURN, user_intent="pricing")
    assert ChatAnalytics.objects.get(session=session).ai_answers == 1


def test_a_spent_token_budget_is_not_an_ai_failure(
    chat_session_factory: Callable[..., Any],
) -> None:
    from sophie_chat.analytics import alerts

    alerts._window.reset()
    session = chat_session_factory()
    budget_turn = {"source": "fallback", "error": "budget", "response_ms": 5}
    for _ in range(20):
        recorder.record_turn(session.pk, reply_meta=budget_turn, user_intent="other")
    row = ChatAnalytics.objects.get(session=session)
    # The model was never called: no AI error, and nothing for the failure alert to count.
    assert (row.fallback_answers, row.ai_errors) == (20, 0)
    assert list(alerts._window.calls) == []
