"""Per-session counters, written at the end of every turn in at most two queries.

The conversation core calls :func:`record_turn` inside its single end-of-turn database unit.
One statement updates the counters: an ``INSERT ... ON CONFLICT (session_id) DO UPDATE`` that adds
this turn's figures to the stored ones (PostgreSQL and SQLite), so creating the row on the first
turn and racing tabs of one session are both safe. A second statement runs only on the turn that
escalates, to flag the session.

Intent counts are *not* incremented here: a JSON increment cannot be made atomic with ``F()``.
The dashboard and report count intents from the messages' metadata at read time, and
:func:`on_session_closed` stores a snapshot in ``ChatAnalytics.intents`` when a session ends.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Field
from django.db.models.functions import Greatest
from django.utils import timezone

from sophie_chat.analytics import alerts, metrics
from sophie_chat.logging import get_logger
from sophie_chat.models import ChatAnalytics, ChatMessage, ChatSession

logger = get_logger(__name__)

# Counters that a turn adds to; max_response_ms is kept with GREATEST instead.
_SUMMED = (
    "user_messages",
    "assistant_messages",
    "ai_answers",
    "cache_answers",
    "fallback_answers",
    "ai_errors",
    "rate_limited",
    "tokens_in",
    "tokens_out",
    "total_first_token_ms",
    "total_response_ms",
    "links_clicked",
)


def _ms(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def turn_increments(reply_meta: dict[str, Any]) -> dict[str, int]:
    """What one finished turn adds to the session's counters."""
    source = reply_meta.get("source") or ""
    return {
        "user_messages": 1,
        "assistant_messages": 1,
        "ai_answers": int(source == "ai"),
        "cache_answers": int(source == "cache"),
        "fallback_answers": int(source == "fallback"),
        "ai_errors": int(bool(_model_error(reply_meta))),
        "tokens_in": _ms(reply_meta.get("tokens_in")),
        "tokens_out": _ms(reply_meta.get("tokens_out")),
        "total_first_token_ms": _ms(reply_meta.get("first_token_ms")),
        "total_response_ms": _ms(reply_meta.get("response_ms")),
        "max_response_ms": _ms(reply_meta.get("response_ms")),
    }


def _upsert_sql(summed: list[str], greatest: list[str], assign: list[str]) -> str:
    qn = connection.ops.quote_name
    table = qn(ChatAnalytics._meta.db_table)
    # Every counter is inserted (0 when this call does not touch it): the columns have no
    # database defaults. Only the touched ones are updated on conflict.
    columns = ["session_id", *_SUMMED, "max_response_ms", "intents", "resolved", "updated_at"]
    placeholders = ", ".join(["%s"] * len(columns))
    biggest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    sets = [f"{qn(c)} = {table}.{qn(c)} + excluded.{qn(c)}" for c in summed]
    sets += [f"{qn(c)} = {biggest}({table}.{qn(c)}, excluded.{qn(c)})" for c in greatest]
    sets += [f"{qn(c)} = excluded.{qn(c)}" for c in assign]
    return (
        # Only quoted column names from the model go into the text; values are parameters.
        f"INSERT INTO {table} ({', '.join(qn(c) for c in columns)}) VALUES ({placeholders}) "  # noqa: S608
        f"ON CONFLICT ({qn('session_id')}) DO UPDATE SET {', '.join(sets)}"
    )


def _prep(name: str, value: Any) -> Any:
    # The value as the database driver wants it (UUIDs are 32 hex digits on SQLite, ...).
    field = ChatAnalytics._meta.get_field(name)
    assert isinstance(field, Field)
    return field.get_db_prep_save(value, connection)


def counts_statement(
    session_id: Any, increments: dict[str, int], *, resolved: bool | None = None
) -> tuple[str, list[Any]] | None:
    """:func:`add_counts`'s one statement, or None on a database without ``ON CONFLICT``."""
    if connection.vendor not in ("postgresql", "sqlite"):
        return None
    summed = [c for c in _SUMMED if c in increments]
    greatest = ["max_response_ms"] if "max_response_ms" in increments else []
    assign = ["updated_at"] + (["resolved"] if resolved is not None else [])
    params: list[Any] = [_prep("session", session_id)]
    params += [increments.get(c, 0) for c in (*_SUMMED, "max_response_ms")]
    params += [_prep("intents", {}), resolved, _prep("updated_at", timezone.now())]
    return _upsert_sql(summed, greatest, assign), params


def add_counts(
    session_id: Any, increments: dict[str, int], *, resolved: bool | None = None
) -> None:
    """Add ``increments`` to the session's counters in one statement, creating the row if needed.

    ``max_response_ms`` in ``increments`` is merged with GREATEST; ``resolved``, when not None,
    overwrites the stored value.
    """
    statement = counts_statement(session_id, increments, resolved=resolved)
    if statement is not None:
        with connection.cursor() as cursor:
            cursor.execute(*statement)
        return
    now = timezone.now()
    summed = [c for c in _SUMMED if c in increments]
    greatest = ["max_response_ms"] if "max_response_ms" in increments else []
    # Other databases: UPDATE, then INSERT when the row does not exist yet (still two queries).
    updates: dict[str, Any] = {c: F(c) + increments[c] for c in summed}
    updates.update({c: Greatest(F(c), increments[c]) for c in greatest})
    updates["updated_at"] = now
    if resolved is not None:
        updates["resolved"] = resolved
    if not ChatAnalytics.objects.filter(session_id=session_id).update(**updates):
        initial = {c: increments[c] for c in summed + greatest}
        ChatAnalytics.objects.bulk_create(
            [ChatAnalytics(session_id=session_id, resolved=resolved, **initial)],
            ignore_conflicts=True,
        )


def record_turn(session_id: Any, *, reply_meta: dict[str, Any], user_intent: str) -> None:
    """Count one finished turn (a user message and its reply). One query; two when escalating.

    ``reply_meta`` is the assistant message's metadata (source, tokens_in, tokens_out,
    first_token_ms, response_ms, error, escalation, ...). Also feeds the Prometheus metrics and
    the AI failure alert, and, after the surrounding transaction commits, sends
    ``sophie_chat.signals.escalated`` (and e-mails MANAGERS when configured).
    """
    escalation = reply_meta.get("escalation") or None
    add_counts(
        session_id,
        turn_increments(reply_meta),
        resolved=False if escalation else None,
    )
    if escalation:
        with connection.cursor() as cursor:
            cursor.execute(*_flag_statement(session_id, escalation))
    turn_recorded(session_id, reply_meta, user_intent)


def _reason(escalation: dict[str, Any] | None) -> str:
    return str(escalation.get("reason") or "") if escalation else ""


def turn_statements(session_id: Any, reply_meta: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """:func:`record_turn`'s writes as raw statements (PostgreSQL, SQLite), for a caller that
    runs them itself (:mod:`sophie_chat.aiodb`); it then calls :func:`turn_recorded`."""
    escalation = reply_meta.get("escalation") or None
    counts = counts_statement(
        session_id, turn_increments(reply_meta), resolved=False if escalation else None
    )
    if counts is None:
        raise NotImplementedError("turn_statements needs PostgreSQL or SQLite")
    return [counts, _flag_statement(session_id, escalation)] if escalation else [counts]


def _flag_statement(session_id: Any, escalation: dict[str, Any]) -> tuple[str, list[Any]]:
    """The session's escalation flag, set once (the first reason stays)."""
    table = connection.ops.quote_name(ChatSession._meta.db_table)
    return (
        f"UPDATE {table} SET escalated = %s, escalation_reason = %s "  # noqa: S608
        "WHERE id = %s AND escalated = %s",
        [True, _reason(escalation)[:64], _prep("session", session_id), False],
    )


def turn_recorded(session_id: Any, reply_meta: dict[str, Any], user_intent: str) -> None:
    """What follows a turn's stored counters: the escalation's log line and notifications (after
    the surrounding transaction commits; at once in autocommit), the metrics and the AI failure
    alert."""
    escalation = reply_meta.get("escalation") or None
    reason = _reason(escalation)
    if escalation:
        logger.info("escalation", session=str(session_id), reason=reason, intent=user_intent)
        from sophie_chat.analytics.notify import after_escalation

        # robust: a failing signal receiver or mail server must not fail the stored turn.
        transaction.on_commit(lambda: after_escalation(str(session_id), escalation), robust=True)
    try:
        _observe(reply_meta, reason)
    except Exception:
        # Metrics and alarms are a side show: the turn is stored whatever happens here.
        logger.exception("analytics_observe_failed", session=str(session_id))


def may_alert(reply_meta: dict[str, Any]) -> bool:
    """Whether counting this turn may raise the AI failure alert (which sends e-mail): a failed
    model call may tip the failure rate over the threshold (a successful one only lowers it)."""
    return bool(_model_error(reply_meta))


def _model_error(reply_meta: dict[str, Any]) -> str:
    """The failure kind of the model call, or "" (a spent token budget never called the model)."""
    error = str(reply_meta.get("error") or "")
    return "" if error == "budget" else error


def _observe(reply_meta: dict[str, Any], escalation_reason: str) -> None:
    source = str(reply_meta.get("source") or "")
    error = _model_error(reply_meta)
    metrics.observe_turn(
        source=source,
        first_token_ms=reply_meta.get("first_token_ms"),
        response_ms=reply_meta.get("response_ms"),
    )
    # A cached answer or a knowledge-base fallback without error never called the model.
    if error or source == "ai":
        metrics.observe_ai_call(ok=not error, kind=error)
        alerts.record_ai_call(ok=not error, kind=error)
    if escalation_reason:
        metrics.observe_escalation(escalation_reason)


def record_rate_limited(session_id: Any) -> None:
    """Count a message refused by the rate limiter (one query). Optional for the core."""
    add_counts(session_id, {"rate_limited": 1})
    metrics.observe_rate_limited()


def record_link_click(session_id: Any) -> None:
    """Count a click on a link of an answer (one query)."""
    add_counts(session_id, {"links_clicked": 1})


def resolution(session: ChatSession) -> bool | None:
    """The stored resolution of a session that ended or was rated.

    Escalated: not resolved. Rated: resolved when rated 4 or 5. Ended without a rating: resolved
    (the read-time rule of :mod:`sophie_chat.analytics.stats` also checks the owner did not come
    back within a day). Still active and unrated: unknown (None).
    """
    if session.escalated:
        return False
    if session.rating is not None:
        return session.rating >= 4
    if session.status != ChatSession.Status.ACTIVE:
        return True
    return None


def on_rated(session_id: Any) -> None:
    """Store the resolution after a rating (the core may call it after saving the rating)."""
    session = ChatSession.objects.filter(pk=session_id).first()
    if session is not None:
        add_counts(session_id, {}, resolved=resolution(session))


def on_session_closed(session_id: Any) -> None:
    """Store the resolution and a snapshot of intent counts when a session ends.

    Off the hot path (close frame, expiry, cleanup): three queries.
    """
    session = ChatSession.objects.filter(pk=session_id).first()
    if session is None:
        return
    intents = Counter(
        str(meta.get("intent") or "other")
        for meta in ChatMessage.objects.filter(
            session_id=session_id, sender=ChatMessage.Sender.USER
        ).values_list("metadata", flat=True)
        if isinstance(meta, dict)
    )
    add_counts(session_id, {}, resolved=resolution(session))
    ChatAnalytics.objects.filter(session_id=session_id).update(intents=dict(intents))
