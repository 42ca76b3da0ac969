"""Streaming CSV exports of sessions and messages, in constant memory.

Rows are read with ``QuerySet.iterator(chunk_size=...)`` (a server-side cursor on PostgreSQL) and
written one chunk at a time, so 100,000 rows cost the same memory as 2,000. Choices made for
spreadsheet users:

- UTF-8 with a byte order mark, so Excel shows "ç" and "ã" correctly (other tools ignore it);
- comma-separated by default, ``;`` on request (Excel in pt-BR expects semicolons);
- any text cell starting with ``= + - @``, a tab or a carriage return gets a leading ``'`` so a
  spreadsheet never runs it as a formula (CSV injection);
- message text is exported with personal data masked (CPF, CNPJ, e-mail, phone): the export is
  for analysis; a user's full data is what :mod:`sophie_chat.privacy` exports.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.db.models import Case, F, Value, When
from django.db.models.fields.json import KT

from sophie_chat.analytics.stats import Filters, ended_q, messages, resolved_q, sessions
from sophie_chat.logging import mask_pii

CHUNK_SIZE = 2000  # rows fetched from the database at a time
BOM = "\ufeff"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

SESSION_COLUMNS = [
    ("session_id", "id"),
    ("created_at", "created_at"),
    ("last_activity_at", "last_activity_at"),
    ("closed_at", "closed_at"),
    ("status", "status"),
    ("user_type", "user_type"),
    ("user_id", "user_id"),
    ("language", "language"),
    ("user_messages", "analytics__user_messages"),
    ("ai_answers", "analytics__ai_answers"),
    ("cache_answers", "analytics__cache_answers"),
    ("fallback_answers", "analytics__fallback_answers"),
    ("ai_errors", "analytics__ai_errors"),
    ("rate_limited", "analytics__rate_limited"),
    ("tokens_in", "analytics__tokens_in"),
    ("tokens_out", "analytics__tokens_out"),
    ("avg_first_token_ms", "avg_first_token_ms"),
    ("avg_response_ms", "avg_response_ms"),
    ("max_response_ms", "analytics__max_response_ms"),
    ("links_clicked", "analytics__links_clicked"),
    ("rating", "rating"),
    ("rating_comment", "rating_comment"),
    ("escalated", "escalated"),
    ("escalation_reason", "escalation_reason"),
    ("resolved", "is_resolved"),
]

MESSAGE_COLUMNS = [
    ("session_id", "session_id"),
    ("seq", "seq"),
    ("created_at", "created_at"),
    ("sender", "sender"),
    ("user_type", "session__user_type"),
    ("language", "session__language"),
    ("text", "content"),
    ("intent", "m_intent"),
    ("source", "m_source"),
    ("status", "m_status"),
    ("first_token_ms", "m_first_token_ms"),
    ("response_ms", "m_response_ms"),
    ("tokens_in", "m_tokens_in"),
    ("tokens_out", "m_tokens_out"),
    ("escalation_reason", "m_escalation_reason"),
]


def safe_cell(value: Any) -> Any:
    """A value a spreadsheet will display, never evaluate."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class _Line:
    """A file-like object whose ``write`` returns what it was given (for csv.writer)."""

    def write(self, value: str) -> str:
        return value


def session_rows(filters: Filters) -> Iterator[tuple[Any, ...]]:
    qs = sessions(filters).annotate(
        is_resolved=Case(
            When(resolved_q(), then=Value(True)),
            When(ended_q(), then=Value(False)),
            default=Value(None),
        ),
        avg_first_token_ms=Case(
            When(
                analytics__assistant_messages__gt=0,
                then=F("analytics__total_first_token_ms") / F("analytics__assistant_messages"),
            ),
            default=Value(None),
        ),
        avg_response_ms=Case(
            When(
                analytics__assistant_messages__gt=0,
                then=F("analytics__total_response_ms") / F("analytics__assistant_messages"),
            ),
            default=Value(None),
        ),
    )
    fields = [source for _, source in SESSION_COLUMNS]
    yield from qs.order_by("created_at", "id").values_list(*fields).iterator(chunk_size=CHUNK_SIZE)


def message_rows(filters: Filters) -> Iterator[tuple[Any, ...]]:
    qs = messages(filters).annotate(
        m_intent=KT("metadata__intent"),
        m_source=KT("metadata__source"),
        m_status=KT("metadata__status"),
        m_first_token_ms=KT("metadata__first_token_ms"),
        m_response_ms=KT("metadata__response_ms"),
        m_tokens_in=KT("metadata__tokens_in"),
        m_tokens_out=KT("metadata__tokens_out"),
        m_escalation_reason=KT("metadata__escalation__reason"),
    )
    fields = [source for _, source in MESSAGE_COLUMNS]
    text_index = fields.index("content")
    for row in (
        qs.order_by("created_at", "session_id", "seq")
        .values_list(*fields)
        .iterator(chunk_size=CHUNK_SIZE)
    ):
        values = list(row)
        values[text_index] = mask_pii(values[text_index] or "")
        yield tuple(values)


def csv_lines(
    kind: str, filters: Filters, delimiter: str = ",", rows_per_chunk: int = 500
) -> Iterator[str]:
    """The export as text chunks: the BOM and header first, then ``rows_per_chunk`` rows each."""
    columns, rows = (
        (SESSION_COLUMNS, session_rows(filters))
        if kind == "sessions"
        else (MESSAGE_COLUMNS, message_rows(filters))
    )
    writer = csv.writer(_Line(), delimiter=delimiter, lineterminator="\r\n")
    yield BOM + writer.writerow([name for name, _ in columns])
    buffer: list[str] = []
    for row in rows:
        buffer.append(writer.writerow([safe_cell(v) for v in row]))
        if len(buffer) >= rows_per_chunk:
            yield "".join(buffer)
            buffer.clear()
    if buffer:
        yield "".join(buffer)
