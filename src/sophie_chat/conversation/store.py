"""The synchronous units of work behind ChatManager, each a few statements in one transaction.

They are public so that the turn pipeline can compose several steps (logout check, intent,
rendering, analytics) into one ``database_sync_to_async`` call.
"""

from __future__ import annotations

import json
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from sophie_chat.conf import get_config
from sophie_chat.conversation.types import (
    ACTIVE,
    ASSISTANT,
    EXPIRED,
    SYSTEM,
    USER,
    Owner,
    SessionEnded,
    SessionState,
    StoredMessage,
    message_dict,
    page_of,
)
from sophie_chat.logging import get_logger
from sophie_chat.models import ChatMessage, ChatSession

logger = get_logger(__name__)


def open_session_sync(
    owner: Owner,
    *,
    user: Any = None,
    language: str,
    notice: str | None = None,
    with_messages: bool = True,
    create: bool = True,
) -> SessionState:
    """Return the owner's active session (with its last page), or start a new one.

    With ``with_messages`` it also reads the last page, stale "streaming" placeholders (a
    worker died mid-answer) made "incomplete" first. With ``with_messages=False`` the page is
    left to a later read (:meth:`ChatManager.history`, which settles the placeholders it
    returns), made after joining the session's group so that nothing falls between the read and
    the live stream.

    With ``create=False`` (what a connecting socket asks) no session is started: the state has
    ``id`` None and what the session that the first message creates will be made of (user type,
    language, the profile facts of ``USER_CONTEXT_PROVIDER``). See
    :mod:`sophie_chat.conversation.creation`.
    """
    config = get_config()
    now = timezone.now()
    session = _active_session(owner)
    if session is not None and session.last_activity_at < now - timedelta(
        seconds=config["SESSION_TTL"]
    ):
        # Only if still idle now: a message stored meanwhile keeps it alive.
        if ChatSession.objects.filter(
            pk=session.pk, last_activity_at=session.last_activity_at
        ).update(status=EXPIRED, closed_at=now):
            session_ended_sync(session.pk)
        session, notice = None, "expired"
    if session is None:
        # USER_TYPE_RESOLVER and USER_CONTEXT_PROVIDER, imported now, failures contained, the
        # profile facts sanitised of personal data (the knowledge layer's helpers).
        from sophie_chat.conversation import context as user_info

        user_context: dict[str, Any] = {}
        if user is not None:
            user_context = user_info.get_user_context(user)
        user_type = user_info.get_user_type(user)
        context = {"user": user_context} if user_context else {}
        if not create:
            return SessionState(
                id=None,
                status=ACTIVE,
                user_type=user_type,
                language=language,
                context=context,
                last_seq=0,
                new=True,
                notice=notice,
            )
        try:
            with transaction.atomic():
                session = ChatSession.objects.create(
                    user_id=owner.user_id,
                    visitor_key="" if owner.user_id is not None else owner.visitor_key,
                    user_type=user_type,
                    language=language,
                    context=context,
                )
        except IntegrityError:
            # Another tab created one since the lookup (one active session per owner).
            return open_session_sync(
                owner, user=user, language=language, with_messages=with_messages
            )
        return SessionState.of(session, new=True, notice=notice)
    messages: list[dict[str, Any]] = []
    has_more = False
    if with_messages:
        settle_dead_replies_sync(
            list(
                ChatMessage.objects.filter(
                    session=session,
                    sender=ASSISTANT,
                    metadata__status="streaming",
                    created_at__lt=dead_reply_cutoff(now),
                )
            )
        )
        messages, has_more = page_of(
            ChatMessage.objects.filter(session=session), config["HISTORY_PAGE_SIZE"]
        )
    return SessionState.of(session, messages=messages, has_more=has_more, notice=notice)


def _active_session(owner: Owner) -> ChatSession | None:
    """The owner's active session, most recently active first (what ``filter().first()`` finds).

    Raw SQL, run on every connect: compiling the ORM query cost more CPU than running it (a
    quarter of a connect's CPU with 1,000 sockets connecting). The row goes through the model's
    field converters like any ORM row.
    """
    table = connection.ops.quote_name(ChatSession._meta.db_table)
    params: list[Any]
    if owner.user_id is not None:
        where, params = "user_id = %s", [owner.user_id]
    else:
        where, params = "user_id IS NULL AND visitor_key = %s", [owner.visitor_key]
    sql = (
        f"SELECT * FROM {table} WHERE {where} AND status = %s "  # noqa: S608 - table name only
        "ORDER BY last_activity_at DESC LIMIT 1"
    )
    return next(iter(ChatSession.objects.raw(sql, [*params, ACTIVE])), None)


def session_ended_sync(session_id: Any) -> None:
    """Tell the analytics that a session ended (closed or expired); failures only logged."""
    try:
        from sophie_chat.analytics import recorder
    except ImportError:  # pragma: no cover - depends on the analytics layer
        return
    try:
        with transaction.atomic():  # a savepoint when the caller has a transaction
            recorder.on_session_closed(session_id)
    except Exception:
        logger.exception("session_ended_analytics_failed", session=str(session_id))


def dead_reply_cutoff(now: Any) -> Any:
    """A "streaming" placeholder that started before this belongs to a worker that died.

    A live answer never streams longer than its 1.5 x ``OPENAI_TIMEOUT`` backstop. It starts
    when its placeholder is stored, unless it waited behind other answers of its socket: then
    the worker writes ``started`` (epoch seconds) into the placeholder when it does start.
    """
    return now - timedelta(seconds=2 * float(get_config()["OPENAI_TIMEOUT"]))


def mark_reply_started_sync(session_id: uuid.UUID, seq: int) -> None:
    """Record that a queued answer starts now, so its wait is not taken for a dead worker."""
    ChatMessage.objects.filter(session_id=session_id, seq=seq, metadata__status="streaming").update(
        metadata={"status": "streaming", "started": time.time()}
    )


def settle_dead_replies_sync(rows: list[ChatMessage]) -> None:
    """Mark the dead placeholders among ``rows`` incomplete, in the database and in ``rows``.

    No query unless there is one: a client catching up on an answer whose worker died (it asks
    again with ``resume``) then sees it end, without having to reconnect. The placeholder's other
    metadata is kept.
    """
    cutoff = dead_reply_cutoff(timezone.now())
    for m in rows:
        meta = m.metadata or {}
        started = meta.get("started")
        if (
            m.sender != ASSISTANT
            or meta.get("status") != "streaming"
            or m.created_at >= cutoff
            or (isinstance(started, (int, float)) and started >= cutoff.timestamp())
        ):
            continue
        merged = {**meta, "status": "incomplete"}
        ChatMessage.objects.filter(pk=m.pk, metadata__status="streaming").update(metadata=merged)
        m.metadata = merged


class _NotActive(Exception):
    """The session to store into is not active (any more); why is decided out of the unit."""


def _reserve_sql(with_context: bool) -> str:
    table = connection.ops.quote_name(ChatSession._meta.db_table)
    context = ", context = %s" if with_context else ""
    return (
        f"UPDATE {table} SET last_seq = last_seq + 2, last_activity_at = %s{context} "  # noqa: S608
        "WHERE id = %s AND status = %s AND last_activity_at >= %s "
        "AND (user_id = %s OR (user_id IS NULL AND visitor_key = %s)) "
        "RETURNING last_seq, context, language, user_type"
    )


def _prep(field_name: str, value: Any, model: Any = ChatSession) -> Any:
    return model._meta.get_field(field_name).get_db_prep_value(value, connection)


def _reserve_params(
    owner: Owner, session_id: uuid.UUID, context: dict[str, Any] | None
) -> tuple[Any, Any, list[Any]]:
    """Now, the expiry cutoff, and the parameters of :func:`_reserve_sql`."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=get_config()["SESSION_TTL"])
    params: list[Any] = [_prep("last_activity_at", now)]
    if context is not None:
        params.append(_prep("context", context))
    params += [
        _prep("id", session_id),
        ACTIVE,
        _prep("last_activity_at", cutoff),
        owner.user_id,
        # A user's session must never match through the visitor branch of the condition.
        owner.visitor_key if owner.user_id is None else None,
    ]
    return now, cutoff, params


def store_user_message_sync(
    owner: Owner,
    session_id: uuid.UUID,
    *,
    client_id: str,
    text: str,
    metadata: dict[str, Any],
    context: dict[str, Any] | None = None,
    history_size: int = 0,
) -> StoredMessage:
    """Store a user message and the answer's placeholder in one transaction; dedup by client id.

    The session's ``last_seq`` grows by 2 in one ``UPDATE ... RETURNING`` (a row lock on
    PostgreSQL, the write lock on SQLite), so concurrent writers on any process never share a seq.
    """
    if connection.vendor == "postgresql":
        statement = one_statement(
            owner,
            session_id,
            client_id=client_id,
            text=text,
            metadata=metadata,
            context=context,
            history_size=history_size,
        )
        try:
            return _store_in_one_statement(owner, statement)
        except IntegrityError:
            return resent_message(session_id, client_id)
    now, cutoff, params = _reserve_params(owner, session_id, context)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(_reserve_sql(context is not None), params)
                row = cursor.fetchone()
            if row is None:
                # Decided after the transaction: raising inside it would roll back the expiry.
                raise _NotActive
            last_seq, ctx, language, user_type = row
            user_msg, _ = ChatMessage.objects.bulk_create(
                [
                    _user_row(session_id, last_seq - 1, client_id, text, metadata, now),
                    ChatMessage(
                        session_id=session_id,
                        seq=last_seq,
                        sender=ASSISTANT,
                        content="",
                        metadata={"status": "streaming"},
                        created_at=now,
                    ),
                ]
            )
            history: list[tuple[str, str]] = []
            degraded_in_a_row = 0
            if history_size:
                rows = history_rows(session_id, last_seq, history_size)
                history = [(sender, content) for sender, content, _meta in reversed(rows)]
                degraded_in_a_row = _degraded_in_a_row(rows)
    except _NotActive:
        raise SessionEnded(_why_not_active(owner, session_id, cutoff)) from None
    except IntegrityError:
        return resent_message(session_id, client_id)
    return _stored(user_msg, ctx, language, user_type, history, degraded_in_a_row)


def resent_message(session_id: uuid.UUID, client_id: str) -> StoredMessage:
    """A resend of a stored message (reconnect, second tab): acknowledged again, not stored."""
    existing = ChatMessage.objects.get(session_id=session_id, client_id=uuid.UUID(client_id))
    return StoredMessage(
        seq=existing.seq,
        reply_seq=existing.seq + 1,
        created_at=existing.created_at.isoformat(),
        duplicate=True,
        message=message_dict(existing),
    )


def _stored(
    user_msg: ChatMessage,
    ctx: Any,
    language: str,
    user_type: str,
    history: list[tuple[str, str]],
    degraded_in_a_row: int,
) -> StoredMessage:
    if isinstance(ctx, str):
        ctx = json.loads(ctx)
    return StoredMessage(
        seq=user_msg.seq,
        reply_seq=user_msg.seq + 1,
        created_at=user_msg.created_at.isoformat(),
        message=message_dict(user_msg),
        history=history,
        context=ctx or {},
        language=language,
        user_type=user_type,
        consecutive_fallbacks=degraded_in_a_row,
    )


def _one_statement_sql(with_context: bool) -> str:
    """Reserve two seqs, insert both rows and read the model's history: one PostgreSQL statement.

    Run in autocommit, it is its own transaction, so the turn pays one round trip where the
    portable path pays five (BEGIN, UPDATE, INSERT, SELECT, COMMIT). The history subquery sees the
    table as it was before the INSERT, which is what it wants: the messages before this one.
    """
    messages = connection.ops.quote_name(ChatMessage._meta.db_table)
    sessions = connection.ops.quote_name(ChatSession._meta.db_table)
    return (
        f"WITH r AS ({_reserve_sql(with_context)}), "  # noqa: S608 - table names only
        f"ins AS (INSERT INTO {messages} "
        "(session_id, seq, sender, client_id, content, metadata, created_at) "
        "SELECT %s, r.last_seq - 1, %s, %s, %s, %s, %s FROM r "
        "UNION ALL SELECT %s, r.last_seq, %s, NULL, '', %s, %s FROM r RETURNING 1) "
        "SELECT r.last_seq, r.context, r.language, r.user_type, (SELECT count(*) FROM ins), "
        # The session's last_seq as the statement's snapshot saw it: when another writer committed
        # while this one waited for the row lock, the history below misses its message.
        f"(SELECT s.last_seq FROM {sessions} s WHERE s.id = %s), "
        "COALESCE((SELECT json_agg(json_build_array(h.sender, h.content, h.metadata) "
        "ORDER BY h.seq DESC) FROM (SELECT seq, sender, content, metadata "
        f"FROM {messages} WHERE session_id = %s AND seq < r.last_seq - 1 "
        "AND content <> '' AND sender <> %s ORDER BY seq DESC LIMIT %s) h), '[]') FROM r"
    )


@dataclass
class OneStatement:
    """PostgreSQL's one statement that stores a message (see :func:`_one_statement_sql`).

    Run by :func:`store_user_message_sync` in a database unit, or by the turn on the event loop
    (:mod:`sophie_chat.aiodb`). A row comes back when the session is active and the owner's,
    none otherwise (:func:`store_user_message_sync` tells why); a resend of a stored message
    raises ``IntegrityError``. :meth:`stored` reads the row.
    """

    sql: str
    params: list[Any]
    session_id: uuid.UUID
    client_id: str
    text: str
    metadata: dict[str, Any]
    now: Any
    cutoff: Any
    history_size: int

    def stored(
        self, row: tuple[Any, ...], history: list[tuple[str, str, Any]] | None = None
    ) -> StoredMessage | None:
        """The stored message; ``None`` when another message was stored while this one waited
        for the session's row lock (its snapshot predates it): read the history again with
        :func:`history_rows` and pass it as ``history`` (rare: two tabs sending at once)."""
        last_seq, ctx, language, user_type, _inserted, seen_seq, rows = row
        if history is not None:
            rows = history
        else:
            if isinstance(rows, str):
                rows = json.loads(rows)
            rows = [tuple(r) for r in rows or []]
            if self.history_size and seen_seq != last_seq - 2:
                return None
        user_msg = _user_row(
            self.session_id, last_seq - 1, self.client_id, self.text, self.metadata, self.now
        )
        turns = [(sender, content) for sender, content, _meta in reversed(rows)]
        return _stored(user_msg, ctx, language, user_type, turns, _degraded_in_a_row(rows))


def one_statement(
    owner: Owner,
    session_id: uuid.UUID,
    *,
    client_id: str,
    text: str,
    metadata: dict[str, Any],
    context: dict[str, Any] | None,
    history_size: int,
) -> OneStatement:
    """Build the one statement that stores a message on PostgreSQL."""
    now, cutoff, reserve = _reserve_params(owner, session_id, context)
    sid = _prep("session", session_id, ChatMessage)
    at = _prep("created_at", now, ChatMessage)
    params = [
        *reserve,
        sid,
        USER,
        uuid.UUID(client_id),
        text,
        _prep("metadata", metadata, ChatMessage),
        at,
        sid,
        ASSISTANT,
        _prep("metadata", {"status": "streaming"}, ChatMessage),
        at,
        _prep("id", session_id),
        sid,
        SYSTEM,
        history_size,
    ]
    return OneStatement(
        _one_statement_sql(context is not None),
        params,
        session_id,
        client_id,
        text,
        metadata,
        now,
        cutoff,
        history_size,
    )


def _store_in_one_statement(owner: Owner, statement: OneStatement) -> StoredMessage:
    """:func:`store_user_message_sync` on PostgreSQL; raises IntegrityError on a resend."""
    # Inside a caller's transaction, a savepoint keeps a resend's IntegrityError from aborting it.
    savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with savepoint, connection.cursor() as cursor:
        cursor.execute(statement.sql, statement.params)
        row = cursor.fetchone()
    if row is None:
        raise SessionEnded(_why_not_active(owner, statement.session_id, statement.cutoff))
    stored = statement.stored(row)
    if stored is None:
        history = history_rows(statement.session_id, row[0], statement.history_size)
        stored = statement.stored(row, history)
    assert stored is not None
    return stored


def _user_row(
    session_id: uuid.UUID, seq: int, client_id: str, text: str, metadata: dict[str, Any], now: Any
) -> ChatMessage:
    """The user's message as a model instance (both store paths build it the same way)."""
    return ChatMessage(
        session_id=session_id,
        seq=seq,
        sender=USER,
        client_id=uuid.UUID(client_id),
        content=text,
        metadata=metadata,
        created_at=now,
    )


def history_rows(session_id: uuid.UUID, last_seq: int, size: int) -> list[tuple[str, str, Any]]:
    """The model's history before the message at ``last_seq - 1``, newest first."""
    return list(
        ChatMessage.objects.filter(session_id=session_id, seq__lt=last_seq - 1)
        .exclude(content="")
        .exclude(sender=SYSTEM)
        .order_by("-seq")
        .values_list("sender", "content", "metadata")[:size]
    )


def _degraded_in_a_row(rows: list[tuple[str, str, Any]]) -> int:
    """Degraded answers (the model failed) at the end of ``rows``, newest first.

    Read from the stored history, so the streak survives a reconnect or a new page. Offline
    answers (source "fallback", no error) are the product working and break the streak.
    """
    count = 0
    for sender, _content, meta in rows:
        if sender != ASSISTANT:
            continue
        meta = meta if isinstance(meta, dict) else json.loads(meta or "{}")
        degraded = meta.get("degraded")
        if not (degraded if degraded is not None else meta.get("error")):
            break
        count += 1
    return count


def _why_not_active(owner: Owner, session_id: uuid.UUID, cutoff: Any) -> str:
    session = ChatSession.objects.filter(owner.q(), pk=session_id).first()
    if session is None:
        return "gone"
    if session.status == ACTIVE and session.last_activity_at < cutoff:
        if ChatSession.objects.filter(pk=session.pk, last_activity_at__lt=cutoff).update(
            status=EXPIRED, closed_at=timezone.now()
        ):
            session_ended_sync(session.pk)
        return EXPIRED
    return session.status


def finish_reply_statement(
    session_id: uuid.UUID, seq: int, *, text: str, metadata: dict[str, Any]
) -> tuple[str, list[Any]]:
    """The UPDATE that stores the answer's final text and metadata over its placeholder.

    Raw SQL, run once per turn: compiling the ORM update cost more CPU than running it. Run by
    :func:`finish_reply_sync`, or on the event loop by :mod:`sophie_chat.aiodb`.
    """
    table = connection.ops.quote_name(ChatMessage._meta.db_table)
    return (
        f"UPDATE {table} SET content = %s, metadata = %s "  # noqa: S608 - table name only
        "WHERE session_id = %s AND seq = %s",
        [
            text,
            _prep("metadata", metadata, ChatMessage),
            _prep("session", session_id, ChatMessage),
            seq,
        ],
    )


def finish_reply_sync(
    session_id: uuid.UUID, seq: int, *, text: str, metadata: dict[str, Any]
) -> None:
    """Store the answer's final text and metadata over its placeholder (one UPDATE)."""
    with connection.cursor() as cursor:
        cursor.execute(*finish_reply_statement(session_id, seq, text=text, metadata=metadata))


def mark_escalated_sync(session_id: uuid.UUID, reason: str) -> None:
    ChatSession.objects.filter(pk=session_id).update(escalated=True, escalation_reason=reason[:64])
