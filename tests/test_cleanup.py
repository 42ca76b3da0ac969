"""sophie_chat_cleanup: expires idle sessions in batches, deletes old ended ones, --dry-run."""

from __future__ import annotations

import uuid
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from sophie_chat.models import ChatAnalytics, ChatMessage, ChatSession

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("sophie_chat_cleanup", *args, stdout=out)
    return out.getvalue()


def make(status: str = "active", idle: timedelta = timedelta(0), **fields: Any) -> ChatSession:
    when = timezone.now() - idle
    # A visitor each: an owner has one active session at most.
    fields.setdefault("visitor_key", uuid.uuid4().hex)
    return ChatSession.objects.create(
        status=status, last_activity_at=when, created_at=when, **fields
    )


def test_expires_idle_sessions_in_batches_and_deletes_old_ones(settings: Any) -> None:
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "SESSION_TTL": 3600, "RETENTION_DAYS": 30}
    idle = [make(idle=timedelta(hours=2)) for _ in range(7)]
    live = make(idle=timedelta(minutes=5))
    old_closed = make("closed", idle=timedelta(days=31))
    ChatMessage.objects.create(session=old_closed, seq=1, sender="user", content="x")
    ChatAnalytics.objects.create(session=old_closed)
    recent_closed = make("closed", idle=timedelta(days=2))
    out = run("--batch-size", "3")
    assert "7 idle session(s) were expired." in out
    assert "1 session(s) ended over 30 day(s) ago were deleted." in out
    assert set(ChatSession.objects.filter(status="expired").values_list("pk", flat=True)) == {
        s.pk for s in idle
    }
    assert ChatSession.objects.get(pk=live.pk).status == "active"
    assert not ChatSession.objects.filter(pk=old_closed.pk).exists()
    assert not ChatMessage.objects.filter(session_id=old_closed.pk).exists()
    assert ChatSession.objects.filter(pk=recent_closed.pk).exists()


def test_dry_run_changes_nothing(settings: Any) -> None:
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "SESSION_TTL": 60, "RETENTION_DAYS": 1}
    make(idle=timedelta(hours=1))
    make("expired", idle=timedelta(days=3))
    out = run("--dry-run")
    assert "1 idle session(s) would be expired." in out
    assert "1 session(s) ended over 1 day(s) ago would be deleted." in out
    assert ChatSession.objects.filter(status="active").count() == 1
    assert ChatSession.objects.count() == 2


def test_retention_zero_keeps_ended_sessions(settings: Any) -> None:
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "RETENTION_DAYS": 0}
    make("closed", idle=timedelta(days=4000))
    assert "ended sessions are kept" in run()
    assert ChatSession.objects.count() == 1


def test_a_session_that_chats_during_the_cleanup_stays_active(settings: Any) -> None:
    """The UPDATE re-checks last_activity_at: a message stored after the SELECT wins."""
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "SESSION_TTL": 3600}
    racing = make(idle=timedelta(hours=2))
    other = make(idle=timedelta(hours=2))
    from django.db.models import QuerySet

    original = QuerySet.update
    state = {"done": False}

    def update(self: QuerySet, **kwargs: Any) -> int:
        if kwargs.get("status") == "expired" and not state["done"]:
            state["done"] = True  # the visitor sends a message between SELECT and UPDATE
            original(ChatSession.objects.filter(pk=racing.pk), last_activity_at=timezone.now())
        return original(self, **kwargs)

    QuerySet.update = update  # type: ignore[method-assign]
    try:
        out = run()
    finally:
        QuerySet.update = original  # type: ignore[method-assign]
    assert "1 idle session(s) were expired." in out
    assert ChatSession.objects.get(pk=racing.pk).status == "active"
    assert ChatSession.objects.get(pk=other.pk).status == "expired"
