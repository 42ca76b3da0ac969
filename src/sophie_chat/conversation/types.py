"""The conversation core's plain types: who owns a session, what the storage returns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.db.models import Q
from django.utils.crypto import constant_time_compare

from sophie_chat.models import ChatMessage

# Plain strings (the TextChoices members' values), usable in raw SQL and typed as str.
ACTIVE, CLOSED, EXPIRED = "active", "closed", "expired"
USER, ASSISTANT, SYSTEM = "user", "assistant", "system"


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
    """The owner's session as a socket opens it. ``id`` is None when the owner has no active
    session: the socket's first message creates one (with ``user_type``, ``language`` and
    ``context`` resolved here)."""

    id: uuid.UUID | None
    status: str
    user_type: str
    language: str
    context: dict[str, Any]
    last_seq: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    has_more: bool = False
    new: bool = False
    notice: str | None = None

    @classmethod
    def of(cls, session: Any, **more: Any) -> SessionState:
        """The state of a stored ``ChatSession`` (``more``: messages, has_more, new, notice)."""
        return cls(
            id=session.id,
            status=session.status,
            user_type=session.user_type,
            language=session.language,
            context=session.context or {},
            last_seq=session.last_seq,
            **more,
        )


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
    consecutive_fallbacks: int = 0  # degraded answers in a row just before this message
    # Set by the first message's path (conversation/creation.py): the session it went into,
    # whether it created that session, and why an older one was replaced ("expired").
    session_id: uuid.UUID | None = None
    created: bool = False
    notice: str | None = None


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
    for key in ("source", "intent", "escalation", "notice"):
        if meta.get(key) is not None:
            data[key] = meta[key]
    return data


def page_of(qs: Any, limit: int) -> tuple[list[dict[str, Any]], bool]:
    rows = list(qs.order_by("-seq")[: limit + 1])
    return [message_dict(m) for m in reversed(rows[:limit])], len(rows) > limit


def still_logged_in(session_key: str, user_id: int) -> bool:
    """Whether the Django session still logs the user in, as Django's ``get_user`` would decide:
    not logged out elsewhere (the session is flushed), no password change since (the session's
    auth hash), account still allowed to log in (the backend returns no inactive user)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if str(store.get(SESSION_KEY)) != str(user_id):
        return False
    backend_path = store.get(BACKEND_SESSION_KEY)
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return False
    user = load_backend(backend_path).get_user(user_id)
    if user is None:
        return False
    if not hasattr(user, "get_session_auth_hash"):
        return True
    # Checked here rather than with get_user(): that one cycles or flushes the browser's session.
    session_hash = str(store.get(HASH_SESSION_KEY) or "")
    expected = [user.get_session_auth_hash()]
    with_secret = getattr(user, "_get_session_auth_hash", None)
    if with_secret is not None:
        expected += [with_secret(secret=key) for key in settings.SECRET_KEY_FALLBACKS]
    return bool(session_hash) and any(constant_time_compare(session_hash, h) for h in expected)
