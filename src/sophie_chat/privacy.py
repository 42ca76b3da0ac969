"""Data protection (LGPD / GDPR): export and erase one person's chat data.

A person is a user (by primary key, username or e-mail) or an anonymous visitor (by the key of the
Django session the widget used). Their data is their chat sessions, with every message, rating and
per-session counter. :func:`export_data` returns it as a JSON-ready dict; :func:`erase_data`
deletes it. Both are used by the management commands ``sophie_chat_export_user`` and
``sophie_chat_erase_user`` and by the admin actions of :mod:`sophie_chat.admin`, when installed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from sophie_chat.logging import get_logger
from sophie_chat.models import ChatMessage, ChatSession

logger = get_logger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Subject:
    """Whose data: a user or an anonymous visitor's session key."""

    user: Any = None
    visitor_key: str = ""

    def __post_init__(self) -> None:
        if (self.user is None) == (not self.visitor_key):
            raise ValueError("Give either a user or a visitor key.")

    def q(self) -> Q:
        if self.user is not None:
            return Q(user=self.user)
        return Q(user__isnull=True, visitor_key=self.visitor_key)

    def describe(self) -> dict[str, Any]:
        if self.user is not None:
            return {"user_id": self.user.pk, "username": self.user.get_username()}
        return _log_subject(self)


class SubjectNotFound(LookupError):
    pass


def find_user(identifier: str) -> Any:
    """A user by primary key, username or e-mail address (in that order)."""
    model = get_user_model()
    manager = model._default_manager
    if identifier.isdigit():
        user = manager.filter(pk=int(identifier)).first()
        if user is not None:
            return user
    user = manager.filter(**{model.USERNAME_FIELD: identifier}).first()
    if user is None and "@" in identifier:
        email_field = model.get_email_field_name()
        matches = list(manager.filter(**{f"{email_field}__iexact": identifier})[:2])
        user = matches[0] if len(matches) == 1 else None
    if user is None:
        raise SubjectNotFound(f"No user {identifier!r} (tried id, username and e-mail).")
    return user


def sessions_of(subject: Subject) -> QuerySet[ChatSession]:
    return ChatSession.objects.filter(subject.q())


def _message(message: ChatMessage) -> dict[str, Any]:
    # The rendered HTML repeats the text; everything else the app stored is included.
    metadata = {k: v for k, v in (message.metadata or {}).items() if k != "html"}
    return {
        "seq": message.seq,
        "sender": message.sender,
        "text": message.content,
        "created_at": message.created_at.isoformat(),
        "metadata": metadata,
    }


def _session(session: ChatSession, messages: list[ChatMessage]) -> dict[str, Any]:
    analytics = getattr(session, "analytics", None)
    return {
        "id": str(session.pk),
        "status": session.status,
        "user_type": session.user_type,
        "language": session.language,
        "created_at": session.created_at.isoformat(),
        "last_activity_at": session.last_activity_at.isoformat(),
        "closed_at": session.closed_at.isoformat() if session.closed_at else None,
        "context": session.context,
        "rating": session.rating,
        "rating_comment": session.rating_comment,
        "rated_at": session.rated_at.isoformat() if session.rated_at else None,
        "escalated": session.escalated,
        "escalation_reason": session.escalation_reason,
        "counters": None
        if analytics is None
        else {
            "user_messages": analytics.user_messages,
            "assistant_messages": analytics.assistant_messages,
            "links_clicked": analytics.links_clicked,
            "rate_limited": analytics.rate_limited,
        },
        "messages": [_message(m) for m in messages],
    }


def export_data(
    subject: Subject | None, sessions: QuerySet[ChatSession] | None = None
) -> dict[str, Any]:
    """Every chat session of ``subject`` (or the given ones) with their messages and ratings."""
    if sessions is None:
        if subject is None:
            raise ValueError("Give a subject or sessions.")
        sessions = sessions_of(subject)
    qs = sessions.select_related("analytics")
    chosen = list(qs.order_by("created_at"))
    by_session: dict[Any, list[ChatMessage]] = {s.pk: [] for s in chosen}
    for message in ChatMessage.objects.filter(session__in=chosen).order_by("session", "seq"):
        by_session[message.session_id].append(message)
    logger.info("privacy_export", sessions=len(chosen), **_log_subject(subject))
    return {
        "format": "django-sophie-chat/user-data",
        "version": FORMAT_VERSION,
        "generated_at": timezone.now().isoformat(),
        "subject": subject.describe() if subject else None,
        "sessions": [_session(s, by_session[s.pk]) for s in chosen],
    }


def export_json(subject: Subject | None, sessions: QuerySet[ChatSession] | None = None) -> str:
    return json.dumps(export_data(subject, sessions), ensure_ascii=False, indent=2)


def erase_data(
    subject: Subject | None, sessions: QuerySet[ChatSession] | None = None
) -> dict[str, int]:
    """Delete the chat sessions of ``subject`` (or the given ones) with their messages.

    Returns how many sessions and messages were deleted.
    """
    if sessions is None:
        if subject is None:
            raise ValueError("Give a subject or sessions.")
        sessions = sessions_of(subject)
    qs = sessions
    with transaction.atomic():
        messages = ChatMessage.objects.filter(session__in=qs.values("pk")).count()
        _, per_model = qs.delete()
    counts = {"sessions": per_model.get(ChatSession._meta.label, 0), "messages": messages}
    logger.info("privacy_erase", **counts, **_log_subject(subject))
    return counts


def _log_subject(subject: Subject | None) -> dict[str, Any]:
    # The visitor key is a session credential: never log it whole.
    if subject is None:
        return {}
    if subject.user is not None:
        return {"user_id": subject.user.pk}
    return {"visitor": subject.visitor_key[:4] + "…"}


def subjects_of(sessions: QuerySet[ChatSession]) -> list[Subject]:
    """The distinct owners of ``sessions``: users first, then anonymous visitors."""
    user_ids = set(sessions.filter(user__isnull=False).values_list("user_id", flat=True))
    users = get_user_model()._default_manager.filter(pk__in=user_ids).order_by("pk")
    keys = sorted(
        set(
            sessions.filter(user__isnull=True)
            .exclude(visitor_key="")
            .values_list("visitor_key", flat=True)
        )
    )
    return [Subject(user=u) for u in users] + [Subject(visitor_key=k) for k in keys]


def owners_sessions(sessions: QuerySet[ChatSession]) -> QuerySet[ChatSession]:
    """Every session of every owner of ``sessions`` (what an erasure request covers)."""
    q = Q(pk__in=sessions.values("pk"))
    for subject in subjects_of(sessions):
        q |= subject.q()
    return ChatSession.objects.filter(q)
