"""The HTTP side of the OpenAI backend: the SDK clients, their transport, and their failures.

The ``openai`` SDK sends through HTTPX2 by default, or through aiohttp (``openai[aiohttp]``,
``openai.DefaultAioHttpClient``), which reads a streamed answer for about half the CPU
(docs/deployment.rst). ``OPENAI_HTTP_CLIENT`` picks one; both must look the same to the rest of
the chat, so this module also owns two things the aiohttp adapter does differently:

- its errors: it maps several aiohttp failures to the wrong HTTPX kind (a refused connection or
  a server that hung up becomes a *connect timeout*), or not at all (a garbled response escapes
  as a bare aiohttp exception). :func:`sdk_error` classifies them from the original aiohttp
  exception, as HTTPX classifies its own;
- its shutdown: an aiohttp session still open when its event loop ends prints "Unclosed client
  session" errors. Clients are closed with their loop (:func:`close_clients`, also run by
  ``asyncio.run()`` and every runner built like it, and at interpreter exit for a loop that was
  only stopped), so a worker stops quietly with or without ASGI lifespan events.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import sys
from collections.abc import AsyncGenerator
from typing import Any

import openai

from sophie_chat.conf import get_config
from sophie_chat.logging import get_logger

try:  # openai 3.x sends through httpx2, 2.x through httpx
    import httpx2 as _http
except ImportError:  # pragma: no cover - openai 2.x
    import httpx as _http  # type: ignore[no-redef]

logger = get_logger(__name__)


class _LoopClients:
    """The clients of one event loop, and the hook that closes them when the loop shuts down."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clients: dict[tuple[Any, ...], openai.AsyncOpenAI] = {}
        self.closer = _close_with_loop(self)
        # Its first step registers the generator with the running loop, whose
        # shutdown_asyncgens() (asyncio.run, asyncio.Runner: uvicorn, hypercorn, pytest-asyncio,
        # asgiref) closes it, running its ``finally`` on that loop before the loop closes.
        step = self.closer.asend(None)
        with contextlib.suppress(StopIteration):
            step.send(None)  # a coroutine: runs to the yield, then stops


# One client per event loop and configuration: a client's connection pool belongs to the loop it
# was first used on (pytest-asyncio runs each test on a new loop), and building a client per call
# costs about 1.5 s of first-token time at 100 concurrent calls. A plain dict, not weak keys: the
# closer generator refers to its loop anyway; an entry goes when its loop shuts down.
_loops: dict[asyncio.AbstractEventLoop, _LoopClients] = {}
_warned_missing = False


def aiohttp_available() -> bool:
    """Whether the SDK's aiohttp transport (``openai[aiohttp]``) can be used here."""
    client_class = getattr(openai, "DefaultAioHttpClient", None)
    if client_class is None:  # an SDK from before the aiohttp transport
        return False
    # Without the extra, the SDK defines a stand-in that raises when instantiated; the real one
    # derives from the httpx-aiohttp adapter (vendored in openai 3.x, a dependency in 2.x).
    return any("httpx_aiohttp" in base.__module__ for base in client_class.__mro__)


def http_transport(setting: str | None = None) -> str:
    """The HTTP transport the SDK sends through: ``"aiohttp"`` or ``"httpx"``.

    ``OPENAI_HTTP_CLIENT`` ``"auto"`` picks aiohttp when it is installed. ``"aiohttp"`` without
    it falls back to httpx with one warning, so the chat keeps answering (system check
    ``sophie_chat.E015`` reports it at start-up); anything else means httpx (``E005``).
    """
    global _warned_missing
    choice = str(setting if setting is not None else get_config()["OPENAI_HTTP_CLIENT"])
    if choice not in ("auto", "aiohttp"):
        return "httpx"
    if aiohttp_available():
        return "aiohttp"
    if choice == "aiohttp" and not _warned_missing:
        _warned_missing = True
        logger.warning("openai_aiohttp_missing", fallback="httpx")
    return "httpx"


def get_client(
    api_key: str, base_url: str | None, timeout: float, transport: str | None = None
) -> openai.AsyncOpenAI:
    """Return the shared ``AsyncOpenAI`` client of this event loop for this configuration."""
    loop = asyncio.get_running_loop()
    state = _loops.get(loop)
    if state is None:
        state = _loops[loop] = _LoopClients(loop)
    transport = http_transport(transport)
    key = (api_key, base_url, float(timeout), transport)
    client = state.clients.get(key)
    if client is None:
        extra: dict[str, Any] = {}
        if transport == "aiohttp":
            # The SDK's own aiohttp client keeps its defaults (connection limits, redirects);
            # its session is made on first use, on this loop.
            extra["http_client"] = openai.DefaultAioHttpClient(timeout=timeout)
        # max_retries=0: the pipeline retries itself, only before the first delta and only
        # within the first-token deadline (the SDK would back off 0.5 s then 1 s regardless).
        client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url or None, timeout=timeout, max_retries=0, **extra
        )
        state.clients[key] = client
    return client


async def close_clients() -> None:
    """Close this loop's clients and their connections.

    Runs by itself when the loop shuts down; call it where a loop's life ends otherwise (a
    lifespan shutdown, the end of a test).
    """
    state = _loops.get(asyncio.get_running_loop())
    if state is not None:
        await state.closer.aclose()


async def _close_with_loop(state: _LoopClients) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        if _loops.get(state.loop) is state:
            del _loops[state.loop]
        clients, state.clients = list(state.clients.values()), {}
        for client in clients:
            try:
                await client.close()
            except Exception as exc:  # a connection already broken: nothing left to free
                logger.debug("openai_client_close_failed", exc_class=type(exc).__name__)


@atexit.register
def _close_at_exit() -> None:
    """Close what no loop shutdown closed: the clients of a loop that was only stopped (daphne's
    Twisted reactor stops its loop and exits)."""
    for loop, state in list(_loops.items()):
        if not loop.is_closed() and not loop.is_running():
            with contextlib.suppress(Exception):
                loop.run_until_complete(state.closer.aclose())
        if _loops.get(loop) is not state:
            continue  # its clients are closed
        # A closed loop can run nothing: end the generator without it, so that no finalizer
        # tries to schedule its cleanup there. (Its aiohttp sessions may still complain.)
        state.clients = {}
        with contextlib.suppress(StopIteration, RuntimeError):
            state.closer.aclose().send(None)
        _loops.pop(loop, None)


def read_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeouts, other request errors) of the HTTP library the installed SDK sends through."""
    try:  # openai 3.x: httpx2 (and legacy httpx when loaded)
        from openai._httpx2 import request_exceptions, timeout_exceptions

        return timeout_exceptions(), request_exceptions()
    except ImportError:  # pragma: no cover - openai 2.x: httpx
        return (_http.TimeoutException,), (_http.RequestError,)


def _aiohttp_cause(exc: BaseException) -> BaseException | None:
    """The aiohttp exception ``exc`` is, or was raised from, if any."""
    aiohttp = sys.modules.get("aiohttp")  # not imported: no aiohttp exception can exist
    if aiohttp is None:
        return None
    seen: BaseException | None = exc
    for _ in range(8):  # the adapter, the SDK and _lines each add one link at most
        if seen is None:
            return None
        if isinstance(seen, aiohttp.ClientError):
            return seen
        seen = seen.__cause__
    return None


def sdk_error(exc: BaseException, request: Any) -> openai.APIConnectionError | None:
    """The SDK error an aiohttp failure must be raised as, or None when ``exc`` is right already.

    HTTPX reports a timeout (connect, read, pool) as ``APITimeoutError`` and every other transport
    failure (refused, reset, hung up, garbled, cut short) as ``APIConnectionError``; so does this,
    judged by the aiohttp exception behind ``exc``: ``ServerTimeoutError`` and its subclasses are
    timeouts, any other ``aiohttp.ClientError`` is a connection failure.
    """
    cause = _aiohttp_cause(exc)
    if cause is None:
        return None
    timed_out = isinstance(cause, sys.modules["aiohttp"].ServerTimeoutError)
    if isinstance(exc, openai.APIConnectionError) and (
        isinstance(exc, openai.APITimeoutError) == timed_out
    ):
        return None
    request = getattr(exc, "request", None) or request
    if timed_out:
        return openai.APITimeoutError(request=request)
    return openai.APIConnectionError(request=request)


def request_for(client: openai.AsyncOpenAI, path: str) -> Any:
    """A request object for an error raised before the SDK made its own (the URL only)."""
    return _http.Request("POST", str(client.base_url).rstrip("/") + "/" + path)
