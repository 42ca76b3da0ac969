"""The OpenAI backend: streamed chat completions through the official ``openai`` SDK.

Works with any OpenAI-compatible server (Azure OpenAI, vLLM, Ollama, LiteLLM...) through
``OPENAI_BASE_URL``. Deadlines and retries live in the pipeline, which owns the user's time budget;
this module only talks to the server and closes the stream whatever happens.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from typing import Any

import openai

from sophie_chat.ai.base import ChatPrompt, Turn, Usage
from sophie_chat.ai.errors import NoAPIKey, StreamDropped
from sophie_chat.conf import get_config

# One client per event loop and configuration: a client's connection pool belongs to the loop it
# was first used on (pytest-asyncio runs each test on a new loop), and building a client per call
# costs about 1.5 s of first-token time at 100 concurrent calls.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], Any]] = (
    weakref.WeakKeyDictionary()
)


def get_client(api_key: str, base_url: str | None, timeout: float) -> openai.AsyncOpenAI:
    """Return the shared ``AsyncOpenAI`` client of this event loop for this configuration."""
    loop = asyncio.get_running_loop()
    per_loop = _clients.get(loop)
    if per_loop is None:
        per_loop = _clients[loop] = {}
    key = (api_key, base_url, float(timeout))
    client = per_loop.get(key)
    if client is None:
        # max_retries=0: the pipeline retries itself, only before the first delta and only
        # within the first-token deadline (the SDK would back off 0.5 s then 1 s regardless).
        client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url or None, timeout=timeout, max_retries=0
        )
        per_loop[key] = client
    return client


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
        stream = await client.chat.completions.create(  # type: ignore[call-overload]
            model=self.model,
            messages=prompt.messages,
            max_tokens=prompt.max_tokens,
            temperature=prompt.temperature,
            stream=True,
            stream_options={"include_usage": True},
        )
        finished = False
        try:
            async for chunk in stream:
                if chunk.usage is not None:
                    self.last_usage = Usage(
                        prompt_tokens=chunk.usage.prompt_tokens or 0,
                        completion_tokens=chunk.usage.completion_tokens or 0,
                    )
                if chunk.model:
                    self.model = chunk.model
                for choice in chunk.choices:
                    content = choice.delta.content if choice.delta is not None else None
                    if content:
                        yield content
                    if choice.finish_reason:
                        finished = True
        finally:
            # Runs on cancellation (the user pressed stop or left) too: frees the connection and
            # tells the server to stop generating.
            await stream.close()
        if not finished:
            # The body ended cleanly but without a finish reason: a proxy cut the stream.
            raise StreamDropped("stream ended without a finish reason")
