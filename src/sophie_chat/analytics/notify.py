"""What happens after a turn escalated: the ``escalated`` signal and the staff e-mail.

Runs after the turn's transaction commits. The e-mail (``NOTIFY_STAFF_ON_ESCALATION``) is built and
sent in a background thread so an SMTP server never slows down a chat turn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.core.mail import mail_managers
from django.db import close_old_connections

from sophie_chat.conf import get_config
from sophie_chat.logging import get_logger, mask_pii
from sophie_chat.models import ChatMessage, ChatSession
from sophie_chat.signals import escalated

logger = get_logger(__name__)

TRANSCRIPT_MESSAGES = 10  # the last messages of the session put in the e-mail
TRANSCRIPT_CHARS = 300  # each message is cut to this many characters


def _in_thread(func: Callable[[], None]) -> None:
    threading.Thread(target=func, name="sophie-chat-notify", daemon=True).start()


# Tests replace this with a direct call; sites never need to.
run_in_background: Callable[[Callable[[], None]], None] = _in_thread


def after_escalation(session_id: str, escalation: dict[str, Any]) -> None:
    """Send the signal, then hand the staff e-mail to a background thread when configured."""
    reason = str(escalation.get("reason") or "")
    # send_robust: one broken receiver must not stop the others, nor the staff e-mail.
    responses = escalated.send_robust(
        sender=ChatSession, session_id=session_id, reason=reason, escalation=escalation
    )
    for receiver, result in responses:
        if isinstance(result, Exception):
            logger.error(
                "escalation_receiver_failed",
                session=session_id,
                receiver=getattr(receiver, "__qualname__", repr(receiver)),
                exc_class=type(result).__name__,
            )
    if get_config()["NOTIFY_STAFF_ON_ESCALATION"]:
        run_in_background(lambda: _send_safely(session_id, reason))


def _send_safely(session_id: str, reason: str) -> None:
    try:
        send_transcript(session_id, reason)
    except Exception:
        logger.exception("escalation_email_failed", session=session_id)
    finally:
        close_old_connections()


def transcript(session_id: str) -> str:
    """The last messages of a session, PII masked and shortened, oldest first."""
    rows = list(
        ChatMessage.objects.filter(session_id=session_id)
        .order_by("-seq")
        .values_list("seq", "sender", "content")[:TRANSCRIPT_MESSAGES]
    )
    lines = []
    for seq, sender, content in reversed(rows):
        text = mask_pii(" ".join(content.split()))
        if len(text) > TRANSCRIPT_CHARS:
            text = text[: TRANSCRIPT_CHARS - 1] + "…"
        lines.append(f"#{seq} {sender}: {text}")
    return "\n".join(lines)


def send_transcript(session_id: str, reason: str) -> None:
    """E-mail MANAGERS that a session escalated, with a short masked transcript."""
    session = ChatSession.objects.filter(pk=session_id).first()
    if session is None:
        return
    body = "\n".join(
        [
            f"Session: {session.pk}",
            f"Reason: {reason}",
            f"User type: {session.user_type}",
            f"Language: {session.language}",
            f"Started: {session.created_at:%Y-%m-%d %H:%M %Z}",
            "",
            transcript(session_id),
        ]
    )
    mail_managers(f"Chat escalated to a human ({reason})", body)
    logger.info("escalation_email_sent", session=session_id, reason=reason)
