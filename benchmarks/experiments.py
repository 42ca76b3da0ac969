"""Benchmark-only what-ifs, switched on with ``BENCH_EXPERIMENTS=name,name``.

They measure a recommended change before anyone makes it in the package; each is applied in the
benchmark server only, before the site is imported. ``run.py`` records which were on.

- ``db_threads``: ``database_sync_to_async`` units run on a pool of 8 threads instead of all
  sharing Channels' one thread (each thread takes its own connection from the psycopg pool).
- ``switch_1ms``: ``sys.setswitchinterval(0.001)``: a thread back from the database waits at
  most 1 ms (not 5 ms) for the event loop thread to hand over the GIL.
- ``service_threads``: only the conversation service's two units of a turn (store the message,
  end of turn) leave the shared thread, for a pool of 8 (applied after Django setup).
- ``raw_sse``: the OpenAI backend reads the stream's SSE lines itself (one ``json.loads`` per
  chunk) instead of the SDK building a pydantic model per chunk (applied after Django setup).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

DB_THREADS = 8


def active() -> list[str]:
    return [name for name in os.environ.get("BENCH_EXPERIMENTS", "").split(",") if name]


LATE = {"raw_sse", "service_threads"}  # need the package importable (after django.setup())


def apply(late: bool = False) -> list[str]:
    names = [name for name in active() if (name in LATE) == late]
    for name in names:
        globals()[f"_{name}"]()
    return names


def _db_threads() -> None:
    from channels.db import DatabaseSyncToAsync

    pool = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="bench-db")
    original = DatabaseSyncToAsync.__init__

    def __init__(self: Any, func: Any, thread_sensitive: bool = True, executor: Any = None) -> None:
        original(self, func, thread_sensitive=False, executor=pool)

    DatabaseSyncToAsync.__init__ = __init__  # type: ignore[method-assign]


def _switch_1ms() -> None:
    sys.setswitchinterval(0.001)


def _raw_sse() -> None:
    """OpenAIBackend.stream without the SDK's per-chunk pydantic models: the request still goes
    through the SDK (auth, base URL, status errors), the SSE lines are parsed with json.loads."""
    import json

    from sophie_chat.ai import openai as backend_module
    from sophie_chat.ai.base import Usage
    from sophie_chat.ai.errors import StreamDropped
    from sophie_chat.conf import get_config

    async def stream(self: Any, prompt: Any, turn: Any) -> Any:
        cfg = get_config()
        client = backend_module.get_client(
            cfg["OPENAI_API_KEY"], cfg["OPENAI_BASE_URL"], float(cfg["OPENAI_TIMEOUT"])
        )
        self.model = str(cfg["OPENAI_MODEL"])
        finished = False
        async with client.chat.completions.with_streaming_response.create(
            model=self.model,
            messages=prompt.messages,
            max_tokens=prompt.max_tokens,
            temperature=prompt.temperature,
            stream=True,
            stream_options={"include_usage": True},
        ) as response:
            async for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if chunk.get("error"):
                    raise RuntimeError("stream error")
                usage = chunk.get("usage")
                if usage:
                    self.last_usage = Usage(
                        usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
                    )
                if chunk.get("model"):
                    self.model = chunk["model"]
                for choice in chunk.get("choices") or ():
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        yield content
                    if choice.get("finish_reason"):
                        finished = True
        if not finished:
            raise StreamDropped("stream ended without a finish reason")

    backend_module.OpenAIBackend.stream = stream  # type: ignore[method-assign]


def _service_threads() -> None:
    from channels.db import DatabaseSyncToAsync

    from sophie_chat.conversation import service

    pool = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="bench-svc")
    for name, func in (
        ("accept_message", service._accept_message_sync),
        ("end_of_turn", service._end_of_turn_sync),
    ):
        setattr(service, name, DatabaseSyncToAsync(func, thread_sensitive=False, executor=pool))
