"""ChatErrorHandler: failures to error frames, classified, with nothing secret."""

from __future__ import annotations

import asyncio
import json

import httpx2
import openai
import pytest

from sophie_chat.ai.errors import (
    ChatErrorHandler,
    MalformedChunk,
    SessionError,
    StreamDropped,
    classify_ai_error,
)

REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")


def status_error(cls, status, headers=None):
    response = httpx2.Response(status, headers=headers or {}, request=REQUEST)
    return cls("secret prompt text sk-live-123", response=response, body=None)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (asyncio.TimeoutError(), "timeout"),
        (TimeoutError(), "timeout"),
        (openai.APITimeoutError(request=REQUEST), "timeout"),
        (status_error(openai.RateLimitError, 429), "rate_limited"),
        (status_error(openai.InternalServerError, 500), "server_error"),
        (status_error(openai.InternalServerError, 503), "server_error"),
        (status_error(openai.BadRequestError, 400), "other"),
        (openai.APIConnectionError(request=REQUEST), "connection"),
        (ConnectionResetError(), "connection"),
        (json.JSONDecodeError("x", "doc", 0), "malformed"),
        (MalformedChunk(), "malformed"),
        (StreamDropped(), "stream_dropped"),
        (ValueError("x"), "other"),
    ],
)
def test_classify(exc, kind):
    assert classify_ai_error(exc) == kind


def test_rate_limit_frame_has_retry_after_and_no_secret(settings):
    frame = ChatErrorHandler.to_frame(
        status_error(openai.RateLimitError, 429, {"retry-after": "7"}), language="pt-br"
    )
    assert frame == {
        "code": "ai_unavailable",
        "message": "A assistente está indisponível no momento. Tente novamente em instantes.",
        "retry_after": 7,
    }
    assert "sk-" not in json.dumps(frame)


def test_session_errors_and_languages():
    frame = ChatErrorHandler.to_frame(SessionError("session_expired"), language="en")
    assert frame == {
        "code": "session_expired",
        "message": "This conversation has expired. A new one will start.",
    }
    assert ChatErrorHandler.handle_rate_limit(2.4, language="pt-br")["retry_after"] == 2
    assert ChatErrorHandler.handle_session_error("forbidden", language="en")["code"] == "forbidden"


def test_unknown_exception_never_leaks_its_text(capsys):
    frame = ChatErrorHandler.to_frame(RuntimeError("Traceback ... sk-live-abc /etc/passwd"))
    assert frame["code"] == "ai_unavailable"
    assert "sk-live" not in json.dumps(frame)
    assert "sk-live" not in capsys.readouterr().out  # nor the log
