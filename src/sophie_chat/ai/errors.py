"""One place that maps failures to what the user sees.

AI failures never reach the user as errors: the pipeline answers with a fallback instead, and only
records the failure's *kind* (``Reply.error``). Other failures (rate limits, sessions) become an
``error`` frame dict through :meth:`ChatErrorHandler.to_frame`. Nothing here puts a traceback, a
key, a prompt or the user's text into a frame or a log line.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from django.utils.translation import get_language

from sophie_chat.logging import get_logger

logger = get_logger(__name__)

AI_ERROR_KINDS = (
    "timeout",
    "rate_limited",
    "server_error",
    "connection",
    "stream_dropped",
    "malformed",
    "no_key",
    "budget",
    "other",
)
# Kinds worth another attempt when nothing has been shown to the user yet.
RETRYABLE_KINDS = frozenset({"rate_limited", "server_error", "connection", "stream_dropped"})


class AIError(Exception):
    """A failure of the AI layer with a known kind (see :data:`AI_ERROR_KINDS`)."""

    kind = "other"

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message or self.kind)
        self.retry_after = retry_after


class AITimeout(AIError):
    kind = "timeout"


class StreamDropped(AIError):
    kind = "stream_dropped"


class MalformedChunk(AIError):
    kind = "malformed"


class NoAPIKey(AIError):
    kind = "no_key"


class BudgetExceeded(AIError):
    kind = "budget"


class SessionError(Exception):
    """A session problem the consumer reports with an error frame; ``code`` is a protocol code."""

    def __init__(self, code: str = "session_expired", message: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.message = message


def classify_ai_error(exc: BaseException) -> str:
    """Return the kind of an AI failure: timeout, rate_limited, server_error, connection, ..."""
    if isinstance(exc, AIError):
        return exc.kind
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "timeout"
    try:
        import openai
    except ImportError:  # pragma: no cover - openai is a dependency
        openai = None  # type: ignore[assignment]
    if openai is not None:
        # APITimeoutError subclasses APIConnectionError: test it first.
        if isinstance(exc, openai.APITimeoutError):
            return "timeout"
        if isinstance(exc, openai.RateLimitError):
            return "rate_limited"
        if isinstance(exc, openai.APIStatusError):
            return "server_error" if exc.status_code >= 500 else "other"
        if isinstance(exc, openai.APIConnectionError):
            return "connection"
        if isinstance(exc, openai.APIResponseValidationError):
            return "malformed"
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
        return "malformed"
    if isinstance(exc, (ConnectionError, OSError)):
        return "connection"
    if type(exc).__name__ == "ValidationError":  # pydantic, on a chunk of the wrong shape
        return "malformed"
    return "other"


def retry_after_of(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (``retry-after``), when it said so."""
    explicit = getattr(exc, "retry_after", None)
    if isinstance(explicit, (int, float)):
        return float(explicit)
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name in ("retry-after-ms", "retry-after"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        return seconds / 1000 if name.endswith("ms") else seconds
    return None


# code -> user-facing message, pt-BR first; the consumer may pass the session's language.
_MESSAGES: dict[str, dict[str, str]] = {
    "rate_limited": {
        "pt": "Você está enviando mensagens rápido demais. Aguarde um momento.",
        "en": "You are sending messages too fast. Please wait a moment.",
    },
    "ai_unavailable": {
        "pt": "A assistente está indisponível no momento. Tente novamente em instantes.",
        "en": "The assistant is temporarily unavailable. Please try again in a moment.",
    },
    "session_expired": {
        "pt": "Esta conversa expirou. Uma nova conversa será iniciada.",
        "en": "This conversation has expired. A new one will start.",
    },
    "session_closed": {
        "pt": "Esta conversa foi encerrada. Uma nova conversa será iniciada.",
        "en": "This conversation is closed. A new one will start.",
    },
    "not_found": {
        "pt": "Não encontramos esta conversa.",
        "en": "This conversation could not be found.",
    },
    "forbidden": {
        "pt": "Você não tem acesso a esta conversa.",
        "en": "You cannot access this conversation.",
    },
    "unavailable": {
        "pt": "Não conseguimos salvar sua mensagem agora. Envie de novo em instantes.",
        "en": "We could not save your message right now. Please send it again in a moment.",
    },
    "busy": {
        "pt": "Aguarde a resposta atual terminar.",
        "en": "Please wait for the current answer to finish.",
    },
    "invalid": {
        "pt": "Não foi possível entender esta mensagem.",
        "en": "That message could not be understood.",
    },
    "too_long": {"pt": "Esta mensagem é longa demais.", "en": "That message is too long."},
}
_UNKNOWN = {
    "pt": "Algo deu errado. Tente novamente.",
    "en": "Something went wrong. Please try again.",
}


class ChatErrorHandler:
    """Maps failures to error frames (``{code, message, retry_after?}``) and logs them safely."""

    @staticmethod
    def message_for(code: str, language: str | None = None) -> str:
        """The message of ``code`` in ``language`` (default: the active Django language)."""
        lang = "en" if (language or get_language() or "").lower().startswith("en") else "pt"
        return (_MESSAGES.get(code) or _UNKNOWN)[lang]

    @classmethod
    def to_frame(
        cls, exc: BaseException, *, session_id: str = "", language: str | None = None
    ) -> dict[str, Any]:
        """Return the ``error`` frame body for ``exc``; never includes the exception's text."""
        retry_after = retry_after_of(exc)
        code = getattr(exc, "code", None) if isinstance(exc, SessionError) else None
        if code is None:
            if type(exc).__name__ in ("RateLimited", "RateLimitExceeded"):
                code = "rate_limited"
            else:
                kind = classify_ai_error(exc)
                code = "rate_limited" if kind == "budget" else "ai_unavailable"
        frame: dict[str, Any] = {"code": code, "message": cls.message_for(code, language)}
        if retry_after is not None:
            frame["retry_after"] = max(1, round(retry_after))
        cls.log(exc, session_id=session_id, code=code)
        return frame

    @staticmethod
    def log(exc: BaseException, *, session_id: str = "", code: str = "") -> None:
        """Log a failure by kind and class name only: no message text, prompt or key."""
        logger.warning(
            "chat_error",
            kind=classify_ai_error(exc),
            exc_class=type(exc).__name__,
            code=code,
            session=session_id,
        )

    @classmethod
    def handle_rate_limit(
        cls, retry_after: float | None, *, session_id: str = "", language: str | None = None
    ) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "code": "rate_limited",
            "message": cls.message_for("rate_limited", language),
        }
        if retry_after is not None:
            frame["retry_after"] = max(1, round(retry_after))
        logger.info("chat_rate_limited", session=session_id)
        return frame

    @classmethod
    def handle_session_error(
        cls, code: str, *, session_id: str = "", language: str | None = None
    ) -> dict[str, Any]:
        logger.info("chat_session_error", code=code, session=session_id)
        return {"code": code, "message": cls.message_for(code, language)}
