"""ChatManager: the chat's storage, one database round trip per unit of work.

Every method takes the :class:`Owner` (a user, or an anonymous visitor's Django session key) and
filters by it, so no caller can reach another owner's session even with its UUID. The async
methods each run one synchronous unit (see :mod:`sophie_chat.conversation.store`) in
``database_sync_to_async`` on the chat's own threads (:mod:`sophie_chat.dbunits`).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import F
from django.utils import timezone

from sophie_chat.conversation.store import (
    finish_reply_statement,
    finish_reply_sync,
    mark_escalated_sync,
    mark_reply_started_sync,
    open_session_sync,
    settle_dead_replies_sync,
    store_user_message_sync,
)
from sophie_chat.conversation.types import (
    ACTIVE,
    CLOSED,
    LoggedOut,
    Owner,
    SessionEnded,
    SessionState,
    StoredMessage,
    message_dict,
    still_logged_in,
)
from sophie_chat.dbunits import db_unit
from sophie_chat.models import ChatAnalytics, ChatMessage, ChatSession
from sophie_chat.protocol import MAX_SEQ

try:  # The analytics layer's hooks, when installed (it may land after the core).
    from sophie_chat.analytics import recorder as _recorder
except ImportError:  # pragma: no cover - depends on the analytics issue
    _recorder = None  # type: ignore[assignment]

__all__ = [
    "ChatManager",
    "LoggedOut",
    "Owner",
    "SessionEnded",
    "SessionState",
    "StoredMessage",
    "finish_reply_statement",
    "finish_reply_sync",
    "mark_escalated_sync",
    "mark_reply_started_sync",
    "message_dict",
    "open_session_sync",
    "still_logged_in",
    "store_user_message_sync",
]

MAX_RESUME_MESSAGES = 1000


def _hook(name: str, *args: Any) -> None:
    function = getattr(_recorder, name, None)
    if function is not None:
        function(*args)


def _owned(owner: Owner, session_id: uuid.UUID) -> Any:
    return ChatMessage.objects.filter(owner.q("session__"), session_id=session_id)


def _page(
    owner: Owner, session_id: uuid.UUID, before_seq: int, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """The owner's messages before ``before_seq``, oldest first, and whether more come before."""
    rows = list(_owned(owner, session_id).filter(seq__lt=before_seq).order_by("-seq")[: limit + 1])
    # A placeholder whose worker died shows as incomplete (no query unless there is one).
    settle_dead_replies_sync(rows)
    return [message_dict(m) for m in reversed(rows[:limit])], len(rows) > limit


class ChatManager:
    """Async API over the chat's storage. Stateless: one instance may serve every socket."""

    open_session = staticmethod(db_unit(open_session_sync))
    store_user_message = staticmethod(db_unit(store_user_message_sync))

    history = staticmethod(db_unit(_page))

    @staticmethod
    @db_unit
    def open_active(
        owner: Owner,
        session_id: uuid.UUID,
        page_size: int,
        auth: tuple[str, int] | None = None,
    ) -> tuple[SessionState | None, list[dict[str, Any]], bool]:
        """The owner's session if it is active, with its last page; (None, [], False) if not.

        For a socket that follows a session another tab created: one unit, after the socket
        joined the session's group. With ``auth`` (Django session key, user id) it raises
        :class:`LoggedOut` first if that Django session no longer logs the user in: a tab
        logged out meanwhile must not be shown a conversation started elsewhere.
        """
        if auth is not None and not still_logged_in(*auth):
            raise LoggedOut
        session = ChatSession.objects.filter(owner.q(), pk=session_id, status=ACTIVE).first()
        if session is None:
            return None, [], False
        messages, has_more = _page(owner, session_id, MAX_SEQ, page_size)
        return SessionState.of(session), messages, has_more

    @staticmethod
    @db_unit
    def messages_after(
        owner: Owner, session_id: uuid.UUID, after_seq: int
    ) -> tuple[list[dict[str, Any]], bool]:
        rows = list(
            _owned(owner, session_id)
            .filter(seq__gt=after_seq)
            .order_by("seq")[: MAX_RESUME_MESSAGES + 1]
        )
        settle_dead_replies_sync(rows)
        return [message_dict(m) for m in rows[:MAX_RESUME_MESSAGES]], len(
            rows
        ) > MAX_RESUME_MESSAGES

    @staticmethod
    @db_unit
    def stored_seq(owner: Owner, session_id: uuid.UUID, client_id: str) -> int | None:
        """The seq of the owner's message with this client id, if it is stored."""
        return (
            _owned(owner, session_id)
            .filter(client_id=uuid.UUID(client_id))
            .values_list("seq", flat=True)
            .first()
        )

    @staticmethod
    @db_unit
    def get(owner: Owner, session_id: uuid.UUID) -> ChatSession | None:
        return ChatSession.objects.filter(owner.q(), pk=session_id).first()

    @staticmethod
    @db_unit
    def close(owner: Owner, session_id: uuid.UUID) -> bool:
        closed = ChatSession.objects.filter(owner.q(), pk=session_id, status=ACTIVE).update(
            status=CLOSED, closed_at=timezone.now()
        )
        if closed:
            _hook("on_session_closed", session_id)
        return bool(closed)

    @staticmethod
    @db_unit
    def update_context(owner: Owner, session_id: uuid.UUID, context: dict[str, Any]) -> bool:
        return bool(
            ChatSession.objects.filter(owner.q(), pk=session_id, status=ACTIVE).update(
                context=context
            )
        )

    @staticmethod
    @db_unit
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
    @db_unit
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
    @db_unit
    def count_rate_limited(session_id: uuid.UUID) -> None:
        if getattr(_recorder, "record_rate_limited", None) is not None:
            _hook("record_rate_limited", session_id)
        else:
            ChatAnalytics.objects.filter(session_id=session_id).update(
                rate_limited=F("rate_limited") + 1
            )
