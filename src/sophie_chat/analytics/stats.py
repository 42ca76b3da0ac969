"""Read-time aggregations behind the dashboard, the weekly report and the exports.

Everything is computed from the sessions and the messages' metadata for a date range (by creation
date, in the current time zone) and an optional user type. A few fixed-cost queries per call,
independent of the number of rows except for the timing percentiles, which read one small JSON
value pair per assistant message.

Resolution (one rule, used everywhere): a session is *resolved* when it ended (closed, expired or
rated), never escalated, and was either rated 4 or 5, or was not rated and its owner did not start
another session within :data:`REOPEN_WINDOW` of its last activity. Sessions that are still active
and unrated are *pending* and left out of the rate.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import (
    Case,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.fields.json import KT
from django.db.models.functions import TruncDate
from django.utils import timezone

from sophie_chat.analytics.timings import answers
from sophie_chat.conversation.escalation import normalize
from sophie_chat.logging import mask_pii
from sophie_chat.models import ChatMessage, ChatSession, UserType

REOPEN_WINDOW = dt.timedelta(hours=24)
ACTIVE_NOW_WINDOW = dt.timedelta(minutes=15)
UNANSWERED_SCAN_LIMIT = 5000  # most recent problem turns read to rank unanswered questions


@dataclass(frozen=True)
class Filters:
    """A date range (inclusive, local dates) and an optional user type."""

    start: dt.date
    end: dt.date
    user_type: str = ""

    @classmethod
    def last_days(cls, days: int = 30, user_type: str = "") -> Filters:
        today = timezone.localdate()
        return cls(today - dt.timedelta(days=days - 1), today, user_type)

    @property
    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        tz = timezone.get_current_timezone()
        start = dt.datetime.combine(self.start, dt.time.min, tzinfo=tz)
        end = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        return start, end

    def days(self) -> list[dt.date]:
        count = (self.end - self.start).days + 1
        return [self.start + dt.timedelta(days=i) for i in range(max(0, count))]


def sessions(filters: Filters) -> QuerySet[ChatSession]:
    start, end = filters.bounds
    # order_by(): the model's default ordering would add a sort to every aggregate.
    qs = ChatSession.objects.filter(created_at__gte=start, created_at__lt=end).order_by()
    if filters.user_type:
        qs = qs.filter(user_type=filters.user_type)
    return qs


def messages(filters: Filters) -> QuerySet[ChatMessage]:
    start, end = filters.bounds
    # order_by(): the default ordering of messages joins their sessions to sort by them.
    qs = ChatMessage.objects.filter(created_at__gte=start, created_at__lt=end).order_by()
    if filters.user_type:
        qs = qs.filter(session__user_type=filters.user_type)
    return qs


def _reopened() -> Q:
    later = {
        "created_at__gt": OuterRef("last_activity_at"),
        "created_at__lte": OuterRef("last_activity_at") + REOPEN_WINDOW,
    }
    by_user = ChatSession.objects.filter(user=OuterRef("user"), **later)
    # Any later session of the same browser session counts, logged in or not; filtering on
    # user IS NULL here would also steer PostgreSQL away from the visitor_key index.
    by_visitor = ChatSession.objects.filter(visitor_key=OuterRef("visitor_key"), **later)
    return (Q(user__isnull=False) & Exists(by_user)) | (
        Q(user__isnull=True) & ~Q(visitor_key="") & Exists(by_visitor)
    )


def ended_q() -> Q:
    return ~Q(status=ChatSession.Status.ACTIVE) | Q(rating__isnull=False)


def resolved_q() -> Q:
    """The resolution rule as a filter on ``ChatSession``."""
    return (
        ended_q()
        & Q(escalated=False)
        & (Q(rating__gte=4) | (Q(rating__isnull=True) & ~_reopened()))
    )


def day_index(filters: Filters) -> Case:
    """The local day of ``created_at`` as 0, 1, 2... from ``filters.start``, computed in SQL.

    Plain comparisons with each day's end: on SQLite, ``TruncDate`` with a time zone calls a
    Python function for every row, several times slower on a big range.
    """
    tz = timezone.get_current_timezone()
    ends = [
        dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        for day in filters.days()
    ]
    return Case(
        *[When(created_at__lt=end, then=Value(i)) for i, end in enumerate(ends)],
        default=Value(None),
        output_field=IntegerField(),
    )


def per_day(qs: QuerySet[Any], filters: Filters) -> list[tuple[dt.date, int]]:
    days = filters.days()
    if connection.vendor == "postgresql":
        tz = timezone.get_current_timezone()
        by_day = qs.annotate(day=TruncDate("created_at", tzinfo=tz))
        counts = dict(by_day.values("day").annotate(n=Count("pk")).values_list("day", "n"))
    else:
        by_index = qs.annotate(day=day_index(filters))
        counts = {
            days[i]: n
            for i, n in by_index.values("day").annotate(n=Count("pk")).values_list("day", "n")
            if i is not None
        }
    return [(day, counts.get(day, 0)) for day in days]


def top_intents(filters: Filters, limit: int = 10) -> list[tuple[str, int]]:
    rows = (
        messages(filters)
        .filter(sender=ChatMessage.Sender.USER)
        .values(intent=KT("metadata__intent"))
        .annotate(n=Count("pk"))
        .order_by("-n", "intent")
    )
    merged: Counter[str] = Counter()
    for row in rows:
        merged[row["intent"] or "other"] += row["n"]
    return sorted(merged.items(), key=lambda item: (-item[1], item[0]))[:limit]


def satisfaction(filters: Filters) -> dict[int, int]:
    counts = dict(
        sessions(filters)
        .filter(rating__isnull=False)
        .values("rating")
        .annotate(n=Count("pk"))
        .values_list("rating", "n")
        .order_by()
    )
    return {score: counts.get(score, 0) for score in range(1, 6)}


def unanswered_questions(filters: Filters, limit: int = 10) -> list[dict[str, Any]]:
    """User questions whose answer was a fallback, that escalated, or that ended a low-rated chat.

    Grouped by their normalised text, most frequent first; the text shown is PII-masked.
    """
    previous_user_text = Subquery(
        ChatMessage.objects.filter(
            session=OuterRef("session"), seq__lt=OuterRef("seq"), sender=ChatMessage.Sender.USER
        )
        .order_by("-seq")
        .values("content")[:1]
    )
    fallbacks = (
        messages(filters)
        .filter(sender=ChatMessage.Sender.ASSISTANT, metadata__source="fallback")
        .annotate(question=previous_user_text)
        .order_by("-created_at")
        .values_list("question", flat=True)[:UNANSWERED_SCAN_LIMIT]
    )
    escalations = (
        messages(filters)
        .filter(sender=ChatMessage.Sender.ASSISTANT, metadata__escalation__reason__isnull=False)
        .annotate(question=previous_user_text)
        .order_by("-created_at")
        .values_list("question", flat=True)[:UNANSWERED_SCAN_LIMIT]
    )
    last_user_text = Subquery(
        ChatMessage.objects.filter(session=OuterRef("pk"), sender=ChatMessage.Sender.USER)
        .order_by("-seq")
        .values("content")[:1]
    )
    low_rated = (
        sessions(filters)
        .filter(rating__lte=2)
        .annotate(question=last_user_text)
        .order_by("-created_at")
        .values_list("question", flat=True)[:UNANSWERED_SCAN_LIMIT]
    )
    groups: dict[str, dict[str, Any]] = {}
    for kind, texts in (
        ("fallback", fallbacks),
        ("escalated", escalations),
        ("low_rating", low_rated),
    ):
        for text in texts:
            if not text:
                continue
            key = normalize(text)[:200]
            if not key:
                continue
            group = groups.setdefault(
                key,
                {"text": mask_pii(" ".join(text.split()))[:200], "count": 0, "reasons": Counter()},
            )
            group["count"] += 1
            group["reasons"][kind] += 1
    ranked = sorted(groups.values(), key=lambda g: (-g["count"], g["text"]))[:limit]
    for group in ranked:
        group["reasons"] = dict(group["reasons"])
    return ranked


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def overview(filters: Filters) -> dict[str, Any]:
    """Every figure of the dashboard for ``filters``."""
    session_qs = sessions(filters)
    # Aggregate aliases must not shadow model fields ("escalated"), hence the n_ prefix.
    counted = session_qs.aggregate(
        n_sessions=Count("pk"),
        n_escalated=Count("pk", filter=Q(escalated=True)),
        n_ended=Count("pk", filter=ended_q()),
        n_resolved=Count("pk", filter=resolved_q()),
        n_rated=Count("pk", filter=Q(rating__isnull=False)),
    )
    totals = {key[2:]: value for key, value in counted.items()}
    message_qs = messages(filters)
    message_totals = message_qs.aggregate(
        messages=Count("pk"),
        user_messages=Count("pk", filter=Q(sender=ChatMessage.Sender.USER)),
    )
    sources, timings = answers(filters)
    answered = sum(sources.values())
    ratings = satisfaction(filters)
    rated = sum(ratings.values())
    since = timezone.now() - ACTIVE_NOW_WINDOW
    active_now = ChatSession.objects.filter(
        status=ChatSession.Status.ACTIVE, last_activity_at__gte=since
    )
    if filters.user_type:
        active_now = active_now.filter(user_type=filters.user_type)
    return {
        "filters": filters,
        "active_now": active_now.count(),
        **totals,
        **message_totals,
        "answers": answered,
        "sources": dict(sources),
        "cache_hit_rate": _rate(sources.get("cache", 0), answered),
        "fallback_rate": _rate(sources.get("fallback", 0), answered),
        "escalation_rate": _rate(totals["escalated"], totals["sessions"]),
        "resolution_rate": _rate(totals["resolved"], totals["ended"]),
        "average_rating": (
            sum(score * n for score, n in ratings.items()) / rated if rated else None
        ),
        "satisfaction": ratings,
        **timings.summary(),
        "response_p50_per_day": timings.per_day(filters, 50),
        "response_p95_per_day": timings.per_day(filters, 95),
        "sessions_per_day": per_day(session_qs, filters),
        "messages_per_day": per_day(message_qs, filters),
        "top_intents": top_intents(filters),
        "unanswered": unanswered_questions(filters),
    }


USER_TYPE_CHOICES = [("", "all")] + [(v, str(label)) for v, label in UserType.choices]
