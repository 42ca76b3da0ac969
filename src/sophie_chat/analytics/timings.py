"""Answer sources and response-time percentiles of the assistant messages in a range.

On PostgreSQL the percentiles are computed by the database (``percentile_disc``), so the
dashboard reads a few dozen rows whatever the volume. Elsewhere the timings are read and sorted in
Python, one small row per answer. Both use the same definition: the p-th percentile is the
smallest value with at least p % of the values at or below it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Func
from django.db.models.fields.json import KT
from django.db.models.functions import TruncDate
from django.utils import timezone

from sophie_chat.models import ChatMessage

if TYPE_CHECKING:
    from sophie_chat.analytics.stats import Filters


def percentile(values: list[int], p: float) -> int | None:
    """The ``p``-th percentile (0-100) of ``values``, like SQL's ``percentile_disc``."""
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, math.ceil(p / 100 * len(ordered)) - 1)
    return ordered[min(index, len(ordered) - 1)]


def _int(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(float(value))
    except (TypeError, ValueError):
        return None


@dataclass
class Timings:
    """Percentiles in milliseconds, and the response-time percentiles of each day."""

    ttft_p50: int | None = None
    ttft_p95: int | None = None
    response_p50: int | None = None
    response_p95: int | None = None
    response_by_day: dict[dt.date, tuple[int | None, int | None]] = field(default_factory=dict)

    def summary(self) -> dict[str, int | None]:
        return {
            "ttft_p50": self.ttft_p50,
            "ttft_p95": self.ttft_p95,
            "response_p50": self.response_p50,
            "response_p95": self.response_p95,
        }

    def per_day(self, filters: Filters, p: int) -> list[tuple[dt.date, float]]:
        """The p50 (``p=50``) or p95 response time of each day, in seconds; 0 for a quiet day."""
        pick = 0 if p == 50 else 1
        return [
            (day, (self.response_by_day.get(day, (None, None))[pick] or 0) / 1000)
            for day in filters.days()
        ]


class _PercentileDisc(Aggregate):
    function = "PERCENTILE_DISC"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


class _JsonNumber(Func):
    # A metadata key as a number, or NULL when it is missing or not a number: a stray string
    # must not make the whole dashboard fail on a cast.
    template = (
        "(CASE WHEN jsonb_typeof(%(expressions)s -> '%(key)s') = 'number' "
        "THEN (%(expressions)s ->> '%(key)s')::float END)"
    )
    output_field = FloatField()


def _pg_percentiles(qs: Any, key: str) -> dict[str, Any]:
    value = _JsonNumber(F("metadata"), key=key)
    return {
        f"{key}_p50": _PercentileDisc(value, fraction=0.5),
        f"{key}_p95": _PercentileDisc(value, fraction=0.95),
    }


def _as_int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _answers_postgresql(qs: Any) -> tuple[Counter[str], Timings]:
    sources: Counter[str] = Counter()
    for source, n in qs.values_list(KT("metadata__source")).annotate(n=Count("pk")).order_by():
        sources[source or "unknown"] += n
    overall = qs.aggregate(
        **_pg_percentiles(qs, "first_token_ms"), **_pg_percentiles(qs, "response_ms")
    )
    timings = Timings(
        ttft_p50=_as_int(overall["first_token_ms_p50"]),
        ttft_p95=_as_int(overall["first_token_ms_p95"]),
        response_p50=_as_int(overall["response_ms_p50"]),
        response_p95=_as_int(overall["response_ms_p95"]),
    )
    daily = (
        qs.annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(**_pg_percentiles(qs, "response_ms"))
        .values_list("day", "response_ms_p50", "response_ms_p95")
        .order_by()
    )
    timings.response_by_day = {day: (_as_int(a), _as_int(b)) for day, a, b in daily}
    return sources, timings


def _answers_python(qs: Any, filters: Filters) -> tuple[Counter[str], Timings]:
    from sophie_chat.analytics.stats import day_index

    sources: Counter[str] = Counter()
    first_token: list[int] = []
    response: list[int] = []
    by_day: dict[dt.date, list[int]] = {}
    days = filters.days()
    rows = qs.values_list(
        KT("metadata__source"),
        KT("metadata__first_token_ms"),
        KT("metadata__response_ms"),
        # The day as an index computed by the database: parsing every timestamp in Python
        # costs more than the rest of this loop.
        day_index(filters),
    )
    for source, ttft, total, index in rows.iterator(chunk_size=5000):
        sources[source or "unknown"] += 1
        if (value := _int(ttft)) is not None:
            first_token.append(value)
        if (value := _int(total)) is not None:
            response.append(value)
            if index is not None:
                by_day.setdefault(days[index], []).append(value)
    timings = Timings(
        ttft_p50=percentile(first_token, 50),
        ttft_p95=percentile(first_token, 95),
        response_p50=percentile(response, 50),
        response_p95=percentile(response, 95),
        response_by_day={
            day: (percentile(values, 50), percentile(values, 95)) for day, values in by_day.items()
        },
    )
    return sources, timings


def answers(filters: Filters) -> tuple[Counter[str], Timings]:
    """Answer sources and timing percentiles of the assistant messages in range."""
    from sophie_chat.analytics.stats import messages  # stats imports this module

    qs = messages(filters).filter(sender=ChatMessage.Sender.ASSISTANT)
    if connection.vendor == "postgresql":
        return _answers_postgresql(qs)
    return _answers_python(qs, filters)
