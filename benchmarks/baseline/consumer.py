"""The baseline: the least a Channels app can do to relay an OpenAI stream to a WebSocket.

A bare ``AsyncWebsocketConsumer`` that speaks just enough of protocol v1 for the load generator
(``session``, ``ack``, ``assistant.start``/``delta``/``done``, ``pong``) and, per message, calls the
model through the official SDK (one ``AsyncOpenAI`` client per process) and sends every chunk with
``self.send``: no storage, no rate limit, no cache, no history, no coalescing. Sophie's consumer is
measured against it on the same server process.

Its SDK client sends through the same HTTP transport as Sophie's in that run: ``BENCH_HTTP_CLIENT``
(what benchmarks/settings.py passes to ``OPENAI_HTTP_CLIENT``), where ``auto``, the default, means
the SDK's aiohttp client when ``openai[aiohttp]`` is installed. The transport alone changes the
CPU an answer costs by about 3.5 ms (``benchmarks/sdk_transport.py``), so a relay on httpx against
Sophie on aiohttp would flatter Sophie.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from openai import AsyncOpenAI, DefaultAioHttpClient

from sophie_chat.ai.transport import http_transport

SUBPROTOCOL = "sophie-chat.v1"
_client: AsyncOpenAI | None = None


def _transport() -> dict[str, Any]:
    """``http_client`` for the transport Sophie chooses (``OPENAI_HTTP_CLIENT``, which the
    benchmark settings take from ``BENCH_HTTP_CLIENT``)."""
    if http_transport() == "aiohttp":
        return {"http_client": DefaultAioHttpClient(timeout=20.0)}
    return {}


def client() -> AsyncOpenAI:
    """The process's one SDK client: a new one per call costs ~1.5 s TTFT at 100 (FACTS)."""
    global _client
    if _client is None:
        _client = AsyncOpenAI(
            api_key=os.environ.get("OPENAI_API_KEY", "sk-bench-dummy"),
            base_url=os.environ["OPENAI_BASE_URL"],
            max_retries=0,
            timeout=20.0,
            **_transport(),
        )
    return _client


class BaselineConsumer(AsyncWebsocketConsumer):
    """Relay each SDK chunk as one ``assistant.delta`` frame."""

    async def connect(self) -> None:
        self.seq = 0
        self.task: asyncio.Task[None] | None = None
        offered = self.scope.get("subprotocols") or []
        await self.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        await self._send({"type": "session", "session_id": None, "messages": [], "last_seq": 0})

    async def disconnect(self, code: int) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        frame = json.loads(text_data or "{}")
        kind = frame.get("type")
        if kind == "ping":
            await self._send({"type": "pong"})
        elif kind == "close":
            await self._send({"type": "closed", "session_id": None})
        elif kind == "message":
            # Streaming runs in its own task, so the consumer keeps receiving meanwhile.
            self.task = asyncio.create_task(self._reply(frame))

    async def _reply(self, frame: dict[str, Any]) -> None:
        self.seq += 1
        await self._send({"type": "ack", "id": frame.get("id"), "seq": self.seq})
        self.seq += 1
        seq = self.seq
        await self._send({"type": "assistant.start", "seq": seq, "reply_to": self.seq - 1})
        parts: list[str] = []
        try:
            stream = await client().chat.completions.create(
                model="bench-model",
                messages=[{"role": "user", "content": str(frame.get("text", ""))}],
                stream=True,
            )
            async for chunk in stream:
                if not chunk.choices:
                    continue
                text = chunk.choices[0].delta.content
                if text:
                    await self._send(
                        {"type": "assistant.delta", "seq": seq, "index": len(parts), "text": text}
                    )
                    parts.append(text)
        except Exception as exc:  # the baseline reports, it does not fall back
            await self._send({"type": "error", "code": "ai_unavailable", "message": repr(exc)})
            return
        await self._send(
            {
                "type": "assistant.done",
                "seq": seq,
                "text": "".join(parts),
                "source": "ai",
                "status": "complete",
            }
        )

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame))
