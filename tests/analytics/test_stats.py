from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from sophie_chat.analytics import stats
from sophie_chat.models import ChatMessage, ChatSession

pytestmark = pytest.mark.django_db


def resolved_ids() -> set[Any]:
    return set(ChatSession.objects.filter(stats.resolved_q()).values_list("pk", flat=True))


def test_resolution_rule(
    chat_session_factory: Callable[..., Any], user_factory: Callable[..., Any]
) -> None:
    now = timezone.now()
    ana, bia = user_factory(), user_factory()
    rated_well = chat_session_factory(user=ana, status="closed", rating=4)
    rated_badly = chat_session_factory(status="closed", rating=2)
    escalated = chat_session_factory(status="closed", rating=5, escalated=True)
    pending = chat_session_factory()
    # Closed without a rating; the owner came back an hour later: not resolved.
    reopened = chat_session_factory(
        user=bia, status="closed", last_activity_at=now - dt.timedelta(hours=5)
    )
    chat_session_factory(user=bia, created_at=now - dt.timedelta(hours=4))
    # Closed without a rating; the visitor came back two days later: resolved.
    quiet = chat_session_factory(
        visitor_key="v1", status="expired", last_activity_at=now - dt.timedelta(days=3)
    )
    chat_session_factory(visitor_key="v1", created_at=now - dt.timedelta(days=1))
    ids = resolved_ids()
    assert rated_well.pk in ids
    assert quiet.pk in ids
    assert not ids & {rated_badly.pk, escalated.pk, pending.pk, reopened.pk}


def test_overview_rates(chat_session_factory: Callable[..., Any]) -> None:
    session = chat_session_factory(status="closed", rating=5)
    for seq, (sender, meta) in enumerate(
        [
            ("user", {"intent": "pricing"}),
            ("assistant", {"source": "ai", "first_token_ms": 300, "response_ms": 1000}),
            ("user", {"intent": "pricing"}),
            ("assistant", {"source": "cache", "first_token_ms": 5, "response_ms": 10}),
            ("user", {"intent": "cancel"}),
            ("assistant", {"source": "fallback", "response_ms": 50}),
            ("user", {}),
            ("assistant", {"source": "ai", "response_ms": 3000, "escalation": None}),
        ],
        start=1,
    ):
        ChatMessage.objects.create(
            session=session, seq=seq, sender=sender, content="x", metadata=meta
        )
    chat_session_factory(escalated=True, escalation_reason="frustration")
    data = stats.overview(stats.Filters.last_days(7))
    assert data["sessions"] == 2
    assert data["messages"] == 8
    assert data["cache_hit_rate"] == 0.25
    assert data["fallback_rate"] == 0.25
    assert data["escalation_rate"] == 0.5
    assert data["resolution_rate"] == 1.0
    assert data["satisfaction"] == {1: 0, 2: 0, 3: 0, 4: 0, 5: 1}
    assert data["top_intents"] == [("pricing", 2), ("cancel", 1), ("other", 1)]
    assert data["response_p50"] in (50, 1000)
    assert data["response_p95"] == 3000
    assert data["ttft_p95"] == 300
    assert data["active_now"] == 1


def test_day_boundaries_follow_the_time_zone(
    chat_session_factory: Callable[..., Any], settings: Any
) -> None:
    settings.TIME_ZONE = "America/Sao_Paulo"
    # 01:30 UTC on the 2nd is 22:30 on the 1st in São Paulo.
    at = dt.datetime(2026, 3, 2, 1, 30, tzinfo=dt.timezone.utc)
    chat_session_factory(created_at=at)
    filters = stats.Filters(dt.date(2026, 3, 1), dt.date(2026, 3, 1))
    assert stats.sessions(filters).count() == 1
    assert stats.per_day(stats.sessions(filters), filters) == [(dt.date(2026, 3, 1), 1)]


def test_percentile_definition() -> None:
    from sophie_chat.analytics.timings import percentile

    values = list(range(1, 21))
    assert percentile(values, 50) == 10
    assert percentile(values, 95) == 19
    assert percentile([7], 95) == 7
    assert percentile([], 50) is None


def test_database_and_python_percentiles_agree(chat_session_factory: Callable[..., Any]) -> None:
    from django.db import connection

    from sophie_chat.analytics import timings

    session = chat_session_factory()
    values = [120, 80, 3000, 450, 460, 90, 1500, 700, 710, 60, 55]
    for seq, value in enumerate(values, start=1):
        meta: dict[str, Any] = {"source": "ai", "response_ms": value, "first_token_ms": value // 2}
        ChatMessage.objects.create(
            session=session, seq=seq, sender="assistant", content="", metadata=meta
        )
    # A stray non-number must be skipped, not break the dashboard.
    ChatMessage.objects.create(
        session=session, seq=99, sender="assistant", content="", metadata={"response_ms": "n/a"}
    )
    qs = stats.messages(stats.Filters.last_days(1)).filter(sender="assistant")
    sources, python = timings._answers_python(qs, stats.Filters.last_days(1))
    assert sources == {"ai": 11, "unknown": 1}
    assert (python.response_p50, python.response_p95) == (450, 3000)
    assert python.ttft_p50 == 225
    if connection.vendor == "postgresql":
        pg_sources, pg = timings._answers_postgresql(qs)
        assert pg_sources == sources
        assert pg.summary() == python.summary()
        assert pg.response_by_day == python.response_by_day
