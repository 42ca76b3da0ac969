"""The weekly report: what people asked, how well Sophie answered, and what changed.

:func:`weekly` gathers the figures of the seven days ending on a date and of the seven days before
them; :func:`render` writes them as plain text, Markdown or JSON. The management command
``sophie_chat_weekly_report`` prints or e-mails it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.db.models import Count

from sophie_chat.analytics import stats

FORMATS = ("text", "markdown", "json")


def _period(week_ending: dt.date, user_type: str) -> stats.Filters:
    return stats.Filters(week_ending - dt.timedelta(days=6), week_ending, user_type)


def _figures(filters: stats.Filters) -> dict[str, Any]:
    data = stats.overview(filters)
    reasons = dict(
        stats.sessions(filters)
        .filter(escalated=True)
        .values("escalation_reason")
        .annotate(n=Count("pk"))
        .values_list("escalation_reason", "n")
        .order_by("-n")
    )
    keys = (
        "sessions",
        "messages",
        "user_messages",
        "ended",
        "resolved",
        "escalated",
        "rated",
        "resolution_rate",
        "escalation_rate",
        "cache_hit_rate",
        "fallback_rate",
        "average_rating",
        "ttft_p50",
        "ttft_p95",
        "response_p50",
        "response_p95",
    )
    figures = {key: data[key] for key in keys}
    figures["satisfaction"] = {str(k): v for k, v in data["satisfaction"].items()}
    figures["top_intents"] = [{"intent": i, "count": n} for i, n in data["top_intents"]]
    figures["common_issues"] = data["unanswered"][:8]
    figures["escalation_reasons"] = {reason or "unknown": n for reason, n in reasons.items()}
    return figures


def weekly(week_ending: dt.date, user_type: str = "") -> dict[str, Any]:
    """The report's data for the seven days ending on ``week_ending`` (inclusive)."""
    current = _period(week_ending, user_type)
    previous = _period(week_ending - dt.timedelta(days=7), user_type)
    return {
        "period": {"start": current.start.isoformat(), "end": current.end.isoformat()},
        "previous_period": {"start": previous.start.isoformat(), "end": previous.end.isoformat()},
        "user_type": user_type or "all",
        "current": _figures(current),
        "previous": _figures(previous),
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _ms(value: int | None) -> str:
    if value is None:
        return "n/a"
    return f"{value} ms" if value < 1000 else f"{value / 1000:.2f} s"


def _change(
    now: float | None,
    before: float | None,
    *,
    lower_is_better: bool = False,
    neutral: bool = False,
) -> str:
    """``+12%`` style change against the previous week, with a word on whether it is good."""
    if now is None or before is None:
        return ""
    if before == 0:
        return "(new)" if now else ""
    delta = (now - before) / before
    if abs(delta) < 0.005:
        return "(steady)"
    if neutral:
        return f"({delta:+.0%})"
    better = (delta < 0) if lower_is_better else (delta > 0)
    return f"({delta:+.0%}, {'better' if better else 'worse'})"


def _points(now: float | None, before: float | None, *, lower_is_better: bool = False) -> str:
    """Change of a rate in percentage points."""
    if now is None or before is None:
        return ""
    points = (now - before) * 100
    if abs(points) < 0.05:
        return "(steady)"
    better = (points < 0) if lower_is_better else (points > 0)
    return f"({points:+.1f} pp, {'better' if better else 'worse'})"


def _lines(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    cur, prev = report["current"], report["previous"]
    avg = cur["average_rating"]
    return [
        (
            "Sessions",
            f"{cur['sessions']:,}",
            _change(cur["sessions"], prev["sessions"], neutral=True),
        ),
        (
            "User messages",
            f"{cur['user_messages']:,}",
            _change(cur["user_messages"], prev["user_messages"], neutral=True),
        ),
        (
            "Resolution rate",
            f"{_pct(cur['resolution_rate'])} of {cur['ended']:,} ended sessions",
            _points(cur["resolution_rate"], prev["resolution_rate"]),
        ),
        (
            "Escalation rate",
            _pct(cur["escalation_rate"]),
            _points(cur["escalation_rate"], prev["escalation_rate"], lower_is_better=True),
        ),
        (
            "Satisfaction",
            "n/a" if avg is None else f"{avg:.2f} / 5 from {cur['rated']:,} ratings",
            _change(avg, prev["average_rating"]),
        ),
        (
            "Response time p50",
            _ms(cur["response_p50"]),
            _change(cur["response_p50"], prev["response_p50"], lower_is_better=True),
        ),
        (
            "Response time p95",
            _ms(cur["response_p95"]),
            _change(cur["response_p95"], prev["response_p95"], lower_is_better=True),
        ),
        (
            "First token p50 / p95",
            f"{_ms(cur['ttft_p50'])} / {_ms(cur['ttft_p95'])}",
            _change(cur["ttft_p95"], prev["ttft_p95"], lower_is_better=True),
        ),
        (
            "Cache hit rate",
            _pct(cur["cache_hit_rate"]),
            _points(cur["cache_hit_rate"], prev["cache_hit_rate"]),
        ),
        (
            "Fallback rate",
            _pct(cur["fallback_rate"]),
            _points(cur["fallback_rate"], prev["fallback_rate"], lower_is_better=True),
        ),
    ]


def _stars(report: dict[str, Any]) -> list[tuple[str, int]]:
    sat = report["current"]["satisfaction"]
    return [("★" * score + "☆" * (5 - score), sat[str(score)]) for score in range(5, 0, -1)]


def _reasons(item: dict[str, Any]) -> str:
    return ", ".join(f"{reason.replace('_', ' ')} {n}" for reason, n in item["reasons"].items())


def render_text(report: dict[str, Any]) -> str:
    period = report["period"]
    cur = report["current"]
    out = [
        f"Sophie chat: weekly report, {period['start']} to {period['end']}",
        f"Users: {report['user_type']}. Changes compare with {report['previous_period']['start']}"
        f" to {report['previous_period']['end']}.",
        "",
        "SUMMARY",
    ]
    out += [
        f"  {label:<22} {value:<34} {change}".rstrip() for label, value, change in _lines(report)
    ]
    out += ["", "TOP TOPICS"]
    total = sum(item["count"] for item in cur["top_intents"]) or 1
    out += [
        f"  {i:>2}. {item['intent']:<20} {item['count']:>6,}  {item['count'] / total:>5.0%}"
        for i, item in enumerate(cur["top_intents"], start=1)
    ] or ["  (no messages)"]
    out += ["", "COMMON ISSUES (answered with a fallback, escalated, or rated 1-2)"]
    out += [
        f"  {item['count']:>4}x  {item['text']}  [{_reasons(item)}]"
        for item in cur["common_issues"]
    ] or ["  (none)"]
    out += ["", "ESCALATIONS BY REASON"]
    out += [f"  {reason:<20} {n:>6,}" for reason, n in cur["escalation_reasons"].items()] or [
        "  (none)"
    ]
    out += ["", "SATISFACTION"]
    out += [f"  {stars}  {n:>6,}" for stars, n in _stars(report)]
    return "\n".join(out) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict[str, Any]) -> str:
    period = report["period"]
    cur = report["current"]
    out = [
        f"# Sophie chat: weekly report, {period['start']} to {period['end']}",
        "",
        f"Users: {report['user_type']}. Changes compare with "
        f"{report['previous_period']['start']} to {report['previous_period']['end']}.",
        "",
        "## Summary",
        "",
        "| | this week | vs previous week |",
        "| --- | --- | --- |",
    ]
    out += [
        f"| {label} | {value} | {change.strip('()')} |" for label, value, change in _lines(report)
    ]
    out += ["", "## Top topics", "", "| # | intent | messages |", "| ---: | --- | ---: |"]
    out += [
        f"| {i} | {_md_cell(item['intent'])} | {item['count']:,} |"
        for i, item in enumerate(cur["top_intents"], start=1)
    ]
    out += ["", "## Common issues", ""]
    out += [
        f"- **{item['count']}x** {_md_cell(item['text'])} ({_reasons(item)})"
        for item in cur["common_issues"]
    ] or ["None."]
    out += ["", "## Escalations by reason", ""]
    out += [f"- {reason}: {n:,}" for reason, n in cur["escalation_reasons"].items()] or ["None."]
    out += ["", "## Satisfaction", "", "| rating | sessions |", "| --- | ---: |"]
    out += [f"| {stars} | {n:,} |" for stars, n in _stars(report)]
    return "\n".join(out) + "\n"


def render(report: dict[str, Any], fmt: str = "text") -> str:
    """The report as ``text``, ``markdown`` or ``json``."""
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"
    if fmt == "markdown":
        return render_markdown(report)
    return render_text(report)
