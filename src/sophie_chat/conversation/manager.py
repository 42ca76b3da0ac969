"""ChatManager: the chat's storage, one database round trip per unit of work.

Every method takes the :class:`Owner` (a user, or an anonymous visitor's Django session key) and
filters by it, so no caller can reach another owner's session even with its UUID. The async
methods each run one synchronous unit in ``database_sync_to_async``; the ``*_sync`` functions are
public so the service can compose several steps (rendering, analytics) into one unit.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import import_module
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from sophie_chat.conf import get_config
from sophie_chat.models import ChatAnalytics, ChatMessage, ChatSession

try:  # The analytics layer's hooks, when installed (it may land after the core).
    from sophie_chat.analytics import recorder as _recorder
except ImportError:  # pragma: no cover - depends on the analytics issue
    _recorder = None  # type: ignore[assignment]


def _hook(name: str, *args: Any) -> None:
    function = getattr(_recorder, name, None)
    if function is not None:
        function(*args)


# Plain strings (the TextChoices members' values), usable in raw SQL and typed as str.
ACTIVE, CLOSED, EXPIRED = "active", "closed", "expired"
USER, ASSISTANT, SYSTEM = "user", "assistant", "system"
MAX_RESUME_MESSAGES = 1000


class LoggedOut(Exception):
    """The Django session behind the socket no longer belongs to its user."""


class SessionEnded(Exception):
    """The session is no longer active; ``status`` says why (closed, expired, or gone)."""

    def __init__(self, status: str) -> None:
        self.status = status
        super().__init__(status)


@dataclass(frozen=True)
class Owner:
    """Who a chat session belongs to: a user id, or an anonymous visitor's session key."""

    user_id: int | None = None
    visitor_key: str = ""

    def q(self, prefix: str = "") -> Q:
        if self.user_id is not None:
            return Q(**{f"{prefix}user_id": self.user_id})
        return Q(**{f"{prefix}user__isnull": True, f"{prefix}visitor_key": self.visitor_key})


@dataclass
class SessionState:
    id: uuid.UUID
    status: str
    user_type: str
    language: str
    context: dict[str, Any]
    last_seq: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    has_more: bool = False
    new: bool = False
    notice: str | None = None


@dataclass
class StoredMessage:
    """Result of storing a user message: its seq and the seq reserved for the answer."""

    seq: int
    reply_seq: int
    created_at: str
    duplicate: bool = False
    message: dict[str, Any] = field(default_factory=dict)
    history: list[tuple[str, str]] = field(default_factory=list)  # (sender, text), oldest first
    context: dict[str, Any] = field(default_factory=dict)
    language: str = ""
    user_type: str = ""


def message_dict(message: ChatMessage) -> dict[str, Any]:
    """The protocol's message object of a stored message."""
    meta = message.metadata or {}
    data: dict[str, Any] = {
        "seq": message.seq,
        "id": str(message.client_id) if message.client_id else None,
        "sender": message.sender,
        "text": message.content,
        "html": meta.get("html") if message.sender == ASSISTANT else None,
        "created_at": message.created_at.isoformat(),
        "status": meta.get("status", "complete"),
    }
    for key in ("source", "intent", "escalation"):
        if meta.get(key) is not None:
            data[key] = meta[key]
    return data


def _page(qs: Any, limit: int) -> tuple[list[dict[str, Any]], bool]:
    rows = list(qs.order_by("-seq")[: limit + 1])
    return [message_dict(m) for m in reversed(rows[:limit])], len(rows) > limit


def still_logged_in(session_key: str, user_id: int) -> bool:
    """Whether the Django session still belongs to the user (a logout elsewhere flushes it)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return str(store.get(SESSION_KEY)) == str(user_id)


def open_session_sync(
    owner: Owner,
    *,
    user: Any = None,
    language: str,
    notice: str | None = None,
    with_messages: bool = True,
) -> SessionState:
    """Return the owner's active session (with its last page), or start a new one.

    Stale "streaming" placeholders (a worker died mid-answer) become "incomplete" here. With
    ``with_messages=False`` the page is left to a later read, made after joining the session's
    group so that nothing falls between the read and the live stream.
    """
    config = get_config()
    now = timezone.now()
    session = ChatSession.objects.filter(owner.q(), status=ACTIVE).first()
    if session is not None and session.last_activity_at < now - timedelta(
        seconds=config["SESSION_TTL"]
    ):
        # Only if still idle now: a message stored meanwhile keeps it alive.
        ChatSession.objects.filter(pk=session.pk, last_activity_at=session.last_activity_at).update(
            status=EXPIRED, closed_at=now
        )
        session, notice = None, "expired"
    if session is None:
        resolver = import_string(config["USER_TYPE_RESOLVER"])
        user_context: dict[str, Any] = {}
        if user is not None and config["USER_CONTEXT_PROVIDER"]:
            user_context = dict(import_string(config["USER_CONTEXT_PROVIDER"])(user) or {})
        session = ChatSession.objects.create(
            user_id=owner.user_id,
            visitor_key="" if owner.user_id is not None else owner.visitor_key,
            user_type=resolver(user),
            language=language,
            context={"user": user_context} if user_context else {},
        )
        return SessionState(
            id=session.id,
            status=session.status,
            user_type=session.user_type,
            language=session.language,
            context=session.context,
            last_seq=0,
            new=True,
            notice=notice,
        )
    stale = now - timedelta(seconds=2 * float(config["OPENAI_TIMEOUT"]))
    ChatMessage.objects.filter(
        session=session, sender=ASSISTANT, metadata__status="streaming"
    ).filter(created_at__lt=stale).update(metadata={"status": "incomplete"})
    messages: list[dict[str, Any]] = []
    has_more = False
    if with_messages:
        messages, has_more = _page(
            ChatMessage.objects.filter(session=session), config["HISTORY_PAGE_SIZE"]
        )
    return SessionState(
        id=session.id,
        status=session.status,
        user_type=session.user_type,
        language=session.language,
        context=session.context or {},
        last_seq=session.last_seq,
        messages=messages,
        has_more=has_more,
        notice=notice,
    )


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
    config = get_config()
    now = timezone.now()
    cutoff = now - timedelta(seconds=config["SESSION_TTL"])
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
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(_reserve_sql(context is not None), params)
                row = cursor.fetchone()
            if row is None:
                raise SessionEnded(_why_not_active(owner, session_id, cutoff))
            last_seq, ctx, language, user_type = row
            user_msg, _ = ChatMessage.objects.bulk_create(
                [
                    ChatMessage(
                        session_id=session_id,
                        seq=last_seq - 1,
                        sender=USER,
                        client_id=uuid.UUID(client_id),
                        content=text,
                        metadata=metadata,
                        created_at=now,
                    ),
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
            if history_size:
                rows = (
                    ChatMessage.objects.filter(session_id=session_id, seq__lt=last_seq - 1)
                    .exclude(content="")
                    .exclude(sender=SYSTEM)
                    .order_by("-seq")
                    .values_list("sender", "content")[:history_size]
                )
                history = list(reversed(list(rows)))
    except IntegrityError:
        # A resend of a stored message (reconnect, second tab): acknowledge it again.
        existing = ChatMessage.objects.get(session_id=session_id, client_id=uuid.UUID(client_id))
        return StoredMessage(
            seq=existing.seq,
            reply_seq=existing.seq + 1,
            created_at=existing.created_at.isoformat(),
            duplicate=True,
            message=message_dict(existing),
        )
    if isinstance(ctx, str):
        ctx = json.loads(ctx)
    return StoredMessage(
        seq=last_seq - 1,
        reply_seq=last_seq,
        created_at=now.isoformat(),
        message=message_dict(user_msg),
        history=history,
        context=ctx or {},
        language=language,
        user_type=user_type,
    )


def _why_not_active(owner: Owner, session_id: uuid.UUID, cutoff: Any) -> str:
    session = ChatSession.objects.filter(owner.q(), pk=session_id).first()
    if session is None:
        return "gone"
    if session.status == ACTIVE and session.last_activity_at < cutoff:
        ChatSession.objects.filter(pk=session.pk, last_activity_at__lt=cutoff).update(
            status=EXPIRED, closed_at=timezone.now()
        )
        return EXPIRED
    return session.status


def finish_reply_sync(
    session_id: uuid.UUID, seq: int, *, text: str, metadata: dict[str, Any]
) -> None:
    """Store the answer's final text and metadata over its placeholder (one UPDATE)."""
    ChatMessage.objects.filter(session_id=session_id, seq=seq).update(
        content=text, metadata=metadata
    )


def mark_escalated_sync(session_id: uuid.UUID, reason: str) -> None:
    ChatSession.objects.filter(pk=session_id).update(escalated=True, escalation_reason=reason[:64])


def _owned(owner: Owner, session_id: uuid.UUID) -> Any:
    return ChatMessage.objects.filter(owner.q("session__"), session_id=session_id)


class ChatManager:
    """Async API over the chat's storage. Stateless: one instance may serve every socket."""

    open_session = staticmethod(database_sync_to_async(open_session_sync))
    store_user_message = staticmethod(database_sync_to_async(store_user_message_sync))

    @staticmethod
    @database_sync_to_async
    def history(
        owner: Owner, session_id: uuid.UUID, before_seq: int, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        return _page(_owned(owner, session_id).filter(seq__lt=before_seq), limit)

    @staticmethod
    @database_sync_to_async
    def messages_after(
        owner: Owner, session_id: uuid.UUID, after_seq: int
    ) -> tuple[list[dict[str, Any]], bool]:
        rows = list(
            _owned(owner, session_id)
            .filter(seq__gt=after_seq)
            .order_by("seq")[: MAX_RESUME_MESSAGES + 1]
        )
        return [message_dict(m) for m in rows[:MAX_RESUME_MESSAGES]], len(
            rows
        ) > MAX_RESUME_MESSAGES

    @staticmethod
    @database_sync_to_async
    def stored_seq(owner: Owner, session_id: uuid.UUID, client_id: str) -> int | None:
        """The seq of the owner's message with this client id, if it is stored."""
        return (
            _owned(owner, session_id)
            .filter(client_id=uuid.UUID(client_id))
            .values_list("seq", flat=True)
            .first()
        )

    @staticmethod
    @database_sync_to_async
    def get(owner: Owner, session_id: uuid.UUID) -> ChatSession | None:
        return ChatSession.objects.filter(owner.q(), pk=session_id).first()

    @staticmethod
    @database_sync_to_async
    def close(owner: Owner, session_id: uuid.UUID) -> bool:
        closed = ChatSession.objects.filter(owner.q(), pk=session_id, status=ACTIVE).update(
            status=CLOSED, closed_at=timezone.now()
        )
        if closed:
            _hook("on_session_closed", session_id)
        return bool(closed)

    @staticmethod
    @database_sync_to_async
    def update_context(owner: Owner, session_id: uuid.UUID, context: dict[str, Any]) -> bool:
        return bool(
            ChatSession.objects.filter(owner.q(), pk=session_id, status=ACTIVE).update(
                context=context
            )
        )

    @staticmethod
    @database_sync_to_async
    def rate(owner: Owner, session_id: uuid.UUID, score: int, comment: str) -> str:
        """Rate (or re-rate) a session: "ok", "expired" or "not_found"."""
        updated = ChatSession.objects.filter(
            owner.q(), pk=session_id, status__in=[ACTIVE, CLOSED]
        ).update(rating=score, rating_comment=comment, rated_at=timezone.now())
        if updated:
            _hook("on_rated", session_id)
            return "ok"
        exists = ChatSession.objects.filter(owner.q(), pk=session_id).exists()
        return "expired" if exists else "not_found"

    @staticmethod
    @database_sync_to_async
    def count_link(owner: Owner, session_id: uuid.UUID, message_seq: int) -> None:
        if not _owned(owner, session_id).filter(seq=message_seq).exists():
            return
        if getattr(_recorder, "record_link_click", None) is not None:
            _hook("record_link_click", session_id)
        else:
            ChatAnalytics.objects.filter(session_id=session_id).update(
                links_clicked=F("links_clicked") + 1
            )

    @staticmethod
    @database_sync_to_async
    def count_rate_limited(session_id: uuid.UUID) -> None:
        if getattr(_recorder, "record_rate_limited", None) is not None:
            _hook("record_rate_limited", session_id)
        else:
            ChatAnalytics.objects.filter(session_id=session_id).update(
                rate_limited=F("rate_limited") + 1
            )
