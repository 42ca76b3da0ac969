"""A chat session is created by its first message, in that message's own database unit.

Connecting stores nothing: a visitor who opens the widget and never writes leaves no row. The
first ``message`` inserts the session, the user's message and the answer's placeholder together
(one statement on PostgreSQL, one short transaction elsewhere). There is no history to read: the
session is new.

"One active session per owner" is the database's: two partial unique indexes (migration 0003).
When another tab (or device) of the owner created a session first, the insert does nothing and
the message goes into that session instead, through the ordinary store path (dedup by client
id, seq reservation, expiry check); a stale one is expired there and the insert tried again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from sophie_chat.conversation.store import (
    _active_session,
    _prep,
    _user_row,
    store_user_message_sync,
)
from sophie_chat.conversation.types import (
    ASSISTANT,
    EXPIRED,
    USER,
    Owner,
    SessionEnded,
    StoredMessage,
    message_dict,
)
from sophie_chat.models import ChatMessage, ChatSession

#: Inserts tried before giving up: each failed one means another session was active and has
#: ended (or expired) since; two in a row is already a rare race.
_ATTEMPTS = 3


@dataclass(frozen=True)
class NewSession:
    """What the session a first message creates is made of, resolved when the socket connected.

    ``context`` is the row's whole context: the profile facts of ``USER_CONTEXT_PROVIDER``
    (``"user"``) and the page the visitor is on (``"page"``).
    """

    user_type: str
    language: str
    context: dict[str, Any]


def create_with_message_sync(
    owner: Owner,
    new: NewSession,
    *,
    client_id: str,
    text: str,
    metadata: dict[str, Any],
    context: dict[str, Any] | None = None,
    history_size: int = 0,
) -> StoredMessage:
    """Store a first message, creating the owner's session with it; return it with the session.

    ``StoredMessage.created`` says whether this call created the session (``seq`` 1). If the
    owner already had an active session (another tab created it a moment ago), the message is
    stored there (``context``, when given, is written to it as on any turn) and the model's
    history read as usual. ``notice`` is ``"expired"`` when a stale session had to be expired on
    the way. Raises :class:`SessionEnded` ("gone") only if every attempt lost a race.
    """
    notice: str | None = None
    for _attempt in range(_ATTEMPTS):
        created = _insert(owner, new, client_id=client_id, text=text, metadata=metadata)
        if created is not None:
            created.notice = notice
            return created
        existing = _active_session(owner)
        if existing is None:  # it ended between the two statements: insert again
            continue
        try:
            stored = store_user_message_sync(
                owner,
                existing.id,
                client_id=client_id,
                text=text,
                metadata=metadata,
                context=context,
                history_size=history_size,
            )
        except SessionEnded as exc:  # idle past SESSION_TTL: expired now, so insert again
            notice = EXPIRED if exc.status == EXPIRED else notice
            continue
        stored.session_id = existing.id
        return stored
    raise SessionEnded("gone")


def _insert(
    owner: Owner, new: NewSession, *, client_id: str, text: str, metadata: dict[str, Any]
) -> StoredMessage | None:
    """Insert the session, the message and the placeholder; None if the owner has an active one."""
    if connection.vendor == "postgresql":
        sql, params, session = first_message_sql(
            owner, new, client_id=client_id, text=text, metadata=metadata
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            inserted = cursor.fetchone() is not None
    else:
        session = _new_session(owner, new)
        inserted = _insert_in_a_transaction(session, client_id, text, metadata)
    if not inserted:
        return None
    return created_message(session, new, client_id=client_id, text=text, metadata=metadata)


def _new_session(owner: Owner, new: NewSession) -> ChatSession:
    now = timezone.now()
    return ChatSession(
        user_id=owner.user_id,
        visitor_key="" if owner.user_id is not None else owner.visitor_key,
        user_type=new.user_type,
        language=new.language,
        context=new.context,
        last_seq=2,  # the message and its answer
        created_at=now,
        last_activity_at=now,
    )


def first_message_sql(
    owner: Owner, new: NewSession, *, client_id: str, text: str, metadata: dict[str, Any]
) -> tuple[str, list[Any], ChatSession]:
    """PostgreSQL's one statement that creates the session with its first message, for
    :mod:`sophie_chat.aiodb` to run: a row if it did, none if the owner already has an active
    session (then :func:`create_with_message_sync` stores the message there). Read the row with
    :func:`created_message`."""
    session = _new_session(owner, new)
    sql, params = _one_statement(session, client_id, text, metadata)
    return sql, params, session


def created_message(
    session: ChatSession, new: NewSession, *, client_id: str, text: str, metadata: dict[str, Any]
) -> StoredMessage:
    """The first message stored with its new session."""
    now = session.created_at
    user_msg = _user_row(session.id, 1, client_id, text, metadata, now)
    return StoredMessage(
        seq=1,
        reply_seq=2,
        created_at=now.isoformat(),
        message=message_dict(user_msg),
        context=new.context,
        language=new.language,
        user_type=new.user_type,
        session_id=session.id,
        created=True,
    )


def _session_insert(session: ChatSession) -> tuple[str, list[Any]]:
    """``INSERT`` of every column of ``session`` (defaults applied), doing nothing on a conflict.

    Built from the model's fields, so a field added later with a default is filled here too.
    ``ON CONFLICT DO NOTHING`` without a target covers the partial unique indexes of the "one
    active session per owner" rule (the primary key is a fresh UUID).
    """
    fields = ChatSession._meta.concrete_fields
    qn = connection.ops.quote_name
    columns = ", ".join(qn(str(f.column)) for f in fields)
    values = [f.get_db_prep_save(f.pre_save(session, True), connection) for f in fields]
    marks = ", ".join(["%s"] * len(fields))
    table = qn(ChatSession._meta.db_table)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING"  # noqa: S608
    return sql, values


def _one_statement(
    session: ChatSession, client_id: str, text: str, metadata: dict[str, Any]
) -> tuple[str, list[Any]]:
    """PostgreSQL: the session and both message rows in one statement (its own transaction)."""
    session_sql, params = _session_insert(session)
    messages = connection.ops.quote_name(ChatMessage._meta.db_table)
    sql = (
        f"WITH s AS ({session_sql} RETURNING id), "  # noqa: S608 - table names only
        f"ins AS (INSERT INTO {messages} "
        "(session_id, seq, sender, client_id, content, metadata, created_at) "
        "SELECT s.id, 1, %s, %s, %s, %s, %s FROM s "
        "UNION ALL SELECT s.id, 2, %s, NULL, '', %s, %s FROM s RETURNING 1) "
        "SELECT (SELECT count(*) FROM ins) FROM s"
    )
    at = _prep("created_at", session.created_at, ChatMessage)
    params += [
        USER,
        uuid.UUID(client_id),
        text,
        _prep("metadata", metadata, ChatMessage),
        at,
        ASSISTANT,
        _prep("metadata", {"status": "streaming"}, ChatMessage),
        at,
    ]
    return sql, params


def _insert_in_a_transaction(
    session: ChatSession, client_id: str, text: str, metadata: dict[str, Any]
) -> bool:
    """Other databases: the session, then both message rows, in one transaction.

    On SQLite the INSERT takes the write lock first, so two racing creators run one after the
    other, and the second one's INSERT sees the first one's session and does nothing.
    """
    session_sql, params = _session_insert(session)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(session_sql, params)
            if cursor.rowcount != 1:
                return False
        ChatMessage.objects.bulk_create(
            [
                _user_row(session.id, 1, client_id, text, metadata, session.created_at),
                ChatMessage(
                    session_id=session.id,
                    seq=2,
                    sender=ASSISTANT,
                    content="",
                    metadata={"status": "streaming"},
                    created_at=session.created_at,
                ),
            ]
        )
    return True
