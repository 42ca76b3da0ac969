"""ChatErrorHandler: failures to error frames, classified, with nothing secret."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from types import SimpleNamespace

import aiohttp
import httpx2
import openai
import pytest

from sophie_chat.ai.base import ChatPrompt, Turn
from sophie_chat.ai.errors import (
    ChatErrorHandler,
    MalformedChunk,
    SessionError,
    StreamDropped,
    classify_ai_error,
)
from sophie_chat.ai.openai import OpenAIBackend
from sophie_chat.ai.transport import read_errors, sdk_error
from tests.conftest import TRANSPORTS

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


async def _failure_of_a_real_turn(server, **behaviour) -> BaseException:
    """The exception the OpenAI backend raises for a turn the loopback server fails."""
    server.configure(**behaviour)
    prompt = ChatPrompt(messages=[{"role": "user", "content": "oi"}])
    with pytest.raises(Exception) as caught:  # noqa: PT011 - any failure; the test inspects it
        async for _ in OpenAIBackend().stream(prompt, Turn(session_id="s", text="oi")):
            pass
    return caught.value


@pytest.mark.usefixtures("sdk_transport")
async def test_rate_limit_frame_has_retry_after_and_no_secret(openai_server):
    exc = await _failure_of_a_real_turn(openai_server, status=429, retry_after=7)
    assert classify_ai_error(exc) == "rate_limited"
    frame = ChatErrorHandler.to_frame(exc, language="pt-br")
    assert frame == {
        "code": "ai_unavailable",
        "message": "A assistente está indisponível no momento. Tente novamente em instantes.",
        "retry_after": 7,
    }
    assert "sk-" not in json.dumps(frame)


# One failure as each transport reports it: (what HTTPX raises, what aiohttp raises, its kind).
# Only some can be made over loopback (tests/ai/test_fallbacks.py has those end to end).
_KEY = SimpleNamespace(host="api.example.com", port=443, ssl=True)
TRANSPORT_FAILURES: dict[str, tuple[Callable[[], Exception], Callable[[], Exception], str]] = {
    "refused": (
        lambda: httpx2.ConnectError("refused"),
        lambda: aiohttp.ClientConnectorError(_KEY, ConnectionRefusedError(111, "refused")),
        "connection",
    ),
    "no-route": (
        lambda: httpx2.ConnectError("no route"),
        lambda: aiohttp.ClientOSError(113, "No route to host"),
        "connection",
    ),
    "server-hung-up": (
        lambda: httpx2.RemoteProtocolError("Server disconnected without sending a response."),
        lambda: aiohttp.ServerDisconnectedError(),
        "connection",
    ),
    "reset": (
        lambda: httpx2.ReadError("Connection reset by peer"),
        lambda: aiohttp.ClientConnectionResetError("Connection reset by peer"),
        "connection",
    ),
    "cut-short": (
        lambda: httpx2.RemoteProtocolError("peer closed connection"),
        lambda: aiohttp.ClientPayloadError("Response payload is not completed"),
        "connection",
    ),
    "garbled": (
        lambda: httpx2.RemoteProtocolError("illegal status line"),
        lambda: aiohttp.ClientResponseError(None, (), status=400, message="Bad status line"),
        "connection",
    ),
    "connect-timeout": (
        lambda: httpx2.ConnectTimeout("timed out"),
        lambda: aiohttp.ConnectionTimeoutError(),
        "timeout",
    ),
    "read-timeout": (
        lambda: httpx2.ReadTimeout("timed out"),
        lambda: aiohttp.SocketTimeoutError(),
        "timeout",
    ),
}


def _as_the_sdk_raises(exc: Exception, transport: str) -> BaseException:
    """``exc`` raised inside the transport and wrapped as the SDK (or the backend's line
    reader) wraps it: through the aiohttp adapter's own exception mapping on aiohttp."""
    from openai._vendor.httpx_aiohttp.transport import map_aiohttp_exceptions

    timeouts, request_errors = read_errors()
    try:
        try:
            if transport == "aiohttp":
                with map_aiohttp_exceptions():
                    raise exc
            raise exc
        except timeouts as err:
            raise openai.APITimeoutError(request=REQUEST) from err
        except request_errors as err:
            raise openai.APIConnectionError(request=REQUEST) from err
    except Exception as raised:
        return raised
    raise AssertionError("nothing raised")


@pytest.mark.parametrize("failure", list(TRANSPORT_FAILURES))
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_transport_failures_are_classified_alike(transport: str, failure: str) -> None:
    httpx_exc, aiohttp_exc, kind = TRANSPORT_FAILURES[failure]
    raised = _as_the_sdk_raises((httpx_exc if transport == "httpx" else aiohttp_exc)(), transport)
    # What OpenAIBackend.stream raises: the SDK's error, corrected where the adapter erred.
    fixed = sdk_error(raised, REQUEST) or raised
    assert isinstance(fixed, openai.APIConnectionError)  # the SDK's own errors, on both
    assert classify_ai_error(fixed) == kind


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
