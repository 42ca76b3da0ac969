"""The OpenAI backend: streamed chat completions through the official ``openai`` SDK.

Works with any OpenAI-compatible server (Azure OpenAI, vLLM, Ollama, LiteLLM...) through
``OPENAI_BASE_URL``. Deadlines and retries live in the pipeline, which owns the user's time budget;
this module only talks to the server and closes the stream whatever happens.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator
from typing import Any

import openai

from sophie_chat.ai.base import ChatPrompt, Turn, Usage
from sophie_chat.ai.errors import MalformedChunk, NoAPIKey, StreamDropped
from sophie_chat.conf import get_config

# One client per event loop and configuration: a client's connection pool belongs to the loop it
# was first used on (pytest-asyncio runs each test on a new loop), and building a client per call
# costs about 1.5 s of first-token time at 100 concurrent calls.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], Any]] = (
    weakref.WeakKeyDictionary()
)


def aiohttp_available() -> bool:
    """Whether the SDK's aiohttp transport (``openai[aiohttp]``) can be used here."""
    try:
        client_class = openai.DefaultAioHttpClient
    except AttributeError:  # an SDK from before the aiohttp transport
        return False
    # Without the extra, the SDK defines a stand-in class that raises when instantiated.
    return "Missing" not in client_class.__name__


def http_transport(setting: str | None = None) -> str:
    """The HTTP transport the SDK sends through: ``"aiohttp"`` or ``"httpx"``.

    ``OPENAI_HTTP_CLIENT`` ``"auto"`` picks aiohttp when it is installed: it reads a streamed
    answer for about half the CPU of the SDK's default HTTPX2 transport (docs/deployment.rst).
    """
    choice = str(setting if setting is not None else get_config()["OPENAI_HTTP_CLIENT"])
    if choice == "auto":
        return "aiohttp" if aiohttp_available() else "httpx"
    return choice


def get_client(
    api_key: str, base_url: str | None, timeout: float, transport: str | None = None
) -> openai.AsyncOpenAI:
    """Return the shared ``AsyncOpenAI`` client of this event loop for this configuration."""
    loop = asyncio.get_running_loop()
    per_loop = _clients.get(loop)
    if per_loop is None:
        per_loop = _clients[loop] = {}
    transport = transport or http_transport()
    key = (api_key, base_url, float(timeout), transport)
    client = per_loop.get(key)
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
        per_loop[key] = client
    return client


async def close_clients() -> None:
    """Close this loop's clients and their connections (a test's or a worker's shutdown)."""
    per_loop = _clients.pop(asyncio.get_running_loop(), {})
    for client in per_loop.values():
        await client.close()


def _transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeouts, other request errors) of the HTTP library the installed SDK sends through."""
    try:  # openai 3.x: httpx2 (and legacy httpx when loaded)
        from openai._httpx2 import request_exceptions, timeout_exceptions

        return timeout_exceptions(), request_exceptions()
    except ImportError:  # openai 2.x: httpx
        import httpx

        return (httpx.TimeoutException,), (httpx.RequestError,)


async def _lines(response: Any) -> AsyncIterator[str]:
    """The body's lines, with read failures raised as the SDK's own stream raises them
    (APITimeoutError, APIConnectionError), so they keep their kind (a cut stream: "connection",
    which the pipeline turns into "stream_dropped" once text was shown)."""
    timeouts, request_errors = _transport_errors()
    try:
        async for line in response.iter_lines():
            yield line
    except timeouts as exc:
        raise openai.APITimeoutError(request=response.http_request) from exc
    except request_errors as exc:
        raise openai.APIConnectionError(request=response.http_request) from exc


class OpenAIBackend:
    """Streams an answer from an OpenAI-compatible chat completions endpoint."""

    name = "openai"

    def __init__(self) -> None:
        self.last_usage: Usage | None = None
        self.model = ""

    @staticmethod
    def configured_model() -> str:
        return str(get_config()["OPENAI_MODEL"])

    async def stream(self, prompt: ChatPrompt, turn: Turn) -> AsyncIterator[str]:
        cfg = get_config()
        api_key = cfg["OPENAI_API_KEY"]
        if not api_key:
            raise NoAPIKey()
        client = get_client(api_key, cfg["OPENAI_BASE_URL"], float(cfg["OPENAI_TIMEOUT"]))
        self.model = str(cfg["OPENAI_MODEL"])
        finished = False
        # with_streaming_response: the SDK still sends the request (auth, base URL, timeout, an
        # APIStatusError on 429/5xx) but leaves the body to us. Its own stream builds a pydantic
        # model per chunk, measured at about 37 % of the worker's CPU; json.loads is a fraction.
        # The messages travel in extra_body, which the SDK merges over the typed parameters: the
        # typed path runs every message through its recursive TypedDict transform, measured at
        # about 3.5 ms of CPU per request for a prompt of eight messages, and plain text messages
        # need nothing from it. The request on the wire is the same.
        async with client.chat.completions.with_streaming_response.create(
            model=self.model,
            messages=[],
            max_tokens=prompt.max_tokens,
            temperature=prompt.temperature,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"messages": prompt.messages},
        ) as response:
            # Leaving the block closes the response, on cancellation too (the user pressed stop
            # or left): frees the connection and tells the server to stop generating.
            async for line in _lines(response):
                if not line.startswith("data:"):
                    continue  # blank separators, "event:", "id:" and ": keep-alive" comments
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)  # a broken chunk: JSONDecodeError, kind "malformed"
                if not isinstance(chunk, dict):
                    raise MalformedChunk("chunk is not an object")
                if chunk.get("error"):
                    # An error event inside a 200 stream, raised as the SDK's own stream does.
                    raise openai.APIError(
                        "error event in the stream",
                        response.http_request,
                        body=chunk["error"],
                    )
                pieces, done = self._read_chunk(chunk)
                finished = finished or done
                for content in pieces:
                    yield content
        if not finished:
            # The body ended cleanly but without a finish reason: a proxy cut the stream.
            raise StreamDropped("stream ended without a finish reason")

    def _read_chunk(self, chunk: dict[str, Any]) -> tuple[list[str], bool]:
        """The pieces of text in one chunk and whether it has a finish reason; records usage."""
        try:
            usage = chunk.get("usage")
            if usage:
                self.last_usage = Usage(
                    prompt_tokens=int(usage.get("prompt_tokens") or 0),
                    completion_tokens=int(usage.get("completion_tokens") or 0),
                )
            if chunk.get("model"):
                self.model = str(chunk["model"])
            out: list[str] = []
            finished = False
            for choice in chunk.get("choices") or ():
                content = (choice.get("delta") or {}).get("content")
                if content:
                    out.append(str(content))
                if choice.get("finish_reason"):
                    finished = True
            return out, finished
        except (AttributeError, TypeError, ValueError) as exc:
            raise MalformedChunk("chunk of the wrong shape") from exc
