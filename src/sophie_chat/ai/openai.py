"""The OpenAI backend: streamed chat completions through the official ``openai`` SDK.

Works with any OpenAI-compatible server (Azure OpenAI, vLLM, Ollama, LiteLLM...) through
``OPENAI_BASE_URL``. Deadlines and retries live in the pipeline, which owns the user's time budget;
this module only talks to the server and closes the stream whatever happens.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import openai

from sophie_chat.ai.base import ChatPrompt, Turn, Usage
from sophie_chat.ai.errors import MalformedChunk, NoAPIKey, StreamDropped
from sophie_chat.ai.transport import get_client, read_errors, request_for, sdk_error
from sophie_chat.conf import get_config

__all__ = ["OpenAIBackend", "get_client"]

DRAIN_SECONDS = 0.1  # seconds: the longest wait for the end of a body after [DONE]


async def _lines(response: Any) -> AsyncIterator[str]:
    """The body's lines, with read failures raised as the SDK's own stream raises them
    (APITimeoutError, APIConnectionError), so they keep their kind (a cut stream: "connection",
    which the pipeline turns into "stream_dropped" once text was shown)."""
    timeouts, request_errors = read_errors()
    try:
        async for line in response.iter_lines():
            yield line
    except timeouts as exc:
        raise openai.APITimeoutError(request=response.http_request) from exc
    except request_errors as exc:
        raise openai.APIConnectionError(request=response.http_request) from exc


async def _consume(lines: AsyncIterator[str]) -> None:
    async for _ in lines:
        pass


async def _drain(lines: AsyncIterator[str]) -> None:
    """Read what is left of the body after ``[DONE]`` (its end follows at once), briefly and
    without failing: the answer is complete whatever happens now. httpx drops the connection
    of a response closed before its end is read (aiohttp keeps it), and the next turn would pay
    a new TCP and TLS handshake; the SDK's own stream drains the same way."""
    try:
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(DRAIN_SECONDS):
                await _consume(lines)
        else:  # pragma: no cover - Python 3.10
            await asyncio.wait_for(_consume(lines), DRAIN_SECONDS)
    except Exception:  # a timeout or a transport error: the connection goes, the answer stays
        return


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
        client = get_client(
            api_key,
            cfg["OPENAI_BASE_URL"],
            float(cfg["OPENAI_TIMEOUT"]),
            str(cfg["OPENAI_HTTP_CLIENT"]),
        )
        self.model = str(cfg["OPENAI_MODEL"])
        finished = False
        # with_streaming_response: the SDK still sends the request (auth, base URL, timeout, an
        # APIStatusError on 429/5xx) but leaves the body to us. Its own stream builds a pydantic
        # model per chunk, measured at about 37 % of the worker's CPU; json.loads is a fraction.
        # The messages travel in extra_body, which the SDK merges over the typed parameters: the
        # typed path runs every message through its recursive TypedDict transform, measured at
        # about 3.5 ms of CPU per request for a prompt of eight messages, and plain text messages
        # need nothing from it. The request on the wire is the same.
        try:
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
                lines = _lines(response)
                async for line in lines:
                    if not line.startswith("data:"):
                        continue  # blank separators, "event:", "id:" and ": keep-alive" comments
                    data = line[5:].strip()
                    if data == "[DONE]":
                        await _drain(lines)
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
        except Exception as exc:
            # Both transports fail alike: the aiohttp adapter's own mapping is corrected from the
            # aiohttp exception behind it (ai/transport.py), so a refused connection or a server
            # that hung up is a "connection" failure (retried), not a "timeout".
            fixed = sdk_error(exc, request_for(client, "chat/completions"))
            if fixed is None:
                raise
            raise fixed from exc
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
