"""A small OpenAI-compatible HTTP server for tests and benchmarks.

It speaks just enough HTTP/1.1 (keep-alive, chunked streaming) for the real ``openai`` SDK to talk
to it over loopback, and implements ``POST /v1/chat/completions`` (streamed and not) with a
behaviour that tests set per test: latency, content, usage, error statuses, hangs, drops and
malformed chunks. It records every completion request it receives.

In-process (pytest): ``server = OpenAITestServer(); server.start()`` runs it on a background
thread with its own event loop; ``server.configure(...)``, ``server.requests`` and
``server.reset()`` act on it directly.

Standalone (benchmarks, browser tests): ``python -m tests.openai_server --port 8765``. Its control
API: ``POST /_control`` with a JSON object of :class:`Behaviour` fields (``content`` may be a
string, ``"@echo"`` to echo the last user message, and ``script`` maps keywords to answers),
``POST /_reset``, ``GET /_requests`` (the recorded request bodies).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import dataclasses
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

ECHO = "@echo"
DEFAULT_CONTENT = "Olá! Eu sou a Sophie. Como posso ajudar você hoje?"


@dataclasses.dataclass
class Behaviour:
    """How the server answers. Every field can be set with ``configure(**fields)``."""

    # Answer text; ECHO echoes the last user message; a callable gets the request body.
    content: str | Callable[[dict[str, Any]], str] = DEFAULT_CONTENT
    # Keyword (lowercase) -> answer; the first keyword found in the last user message wins.
    script: dict[str, str] = dataclasses.field(default_factory=dict)
    ttft: float = 0.0  # seconds between the response headers and the first content chunk
    tokens_per_second: float = 0.0  # 0 = as fast as possible
    usage: bool = True  # send usage when the client asks for it (stream_options.include_usage)
    # Statuses answered to the next requests, one per request, before normal answers resume
    # (e.g. [429, 500]); ``status`` answers every request with that status.
    statuses: list[int] = dataclasses.field(default_factory=list)
    status: int = 200
    retry_after: float | None = None  # seconds, sent as retry-after with 429/503
    hang: float = 0.0  # seconds to wait before sending anything at all (headers included)
    drop_after: int | None = None  # close the connection abruptly after N content chunks
    malformed_after: int | None = None  # send a broken chunk after N content chunks
    error_after: int | None = None  # send an error event after N content chunks (status 200)
    finish: bool = True  # False: end the body cleanly with no finish reason, usage or [DONE]
    end_delay: float = 0.0  # seconds between [DONE] and the end of the body
    disconnect: bool = False  # close the connection after reading the request, answer nothing
    garbled: bool = False  # answer with a line that is not HTTP, then close
    model: str = ""  # model name reported back; empty = the requested model


def _tokens(text: str) -> list[str]:
    """Split text into word-sized pieces that concatenate back to exactly ``text``."""
    pieces = re.findall(r"\s*\S+", text)
    tail = text[len("".join(pieces)) :]
    if tail:
        pieces.append(tail)
    return pieces or [""]


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


class OpenAITestServer:
    """The server; one instance per process (in-process) or per ``python -m`` run."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.behaviour = Behaviour()
        # What reset() returns to: the defaults, or what the command line set.
        self.initial = Behaviour()
        self.requests: list[dict[str, Any]] = []
        # Streams that ended because the client went away (stop, cancel) before [DONE].
        self.client_closed_streams = 0
        # Connections accepted: a new one per request means none was reused from a pool.
        self.connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._stopping: asyncio.Event | None = None

    # --- control ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def configure(self, **fields: Any) -> OpenAITestServer:
        for name, value in fields.items():
            if not hasattr(self.behaviour, name):
                raise TypeError(f"unknown behaviour field {name!r}")
            # A copy: the server pops from ``statuses``, which must not empty the caller's list.
            setattr(self.behaviour, name, copy.deepcopy(value))
        return self

    def reset(self) -> None:
        with self._lock:
            self.behaviour = copy.deepcopy(self.initial)
            self.requests.clear()
            self.client_closed_streams = 0
            self.connections = 0

    @property
    def completion_requests(self) -> int:
        return len(self.requests)

    def last_request(self) -> dict[str, Any]:
        return self.requests[-1]

    # --- lifecycle --------------------------------------------------------------------------
    async def serve(self) -> asyncio.AbstractServer:
        self._stopping = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self._server

    def start(self) -> OpenAITestServer:
        """Run on a daemon thread with its own event loop; returns once it listens."""
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.serve())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="openai-test-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        """Stop listening, close open connections and stop the loop."""
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def shutdown() -> None:
            assert self._stopping is not None
            self._stopping.set()
            server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            # A handler asleep between two chunks would outlive the loop ("Task was destroyed
            # but it is pending!" at exit): end them all here.
            handlers = [task for task in self._handlers if not task.done()]
            for task in handlers:
                task.cancel()
            if handlers:
                await asyncio.wait(handlers, timeout=2)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, waking early when the server stops; False when it did."""
        assert self._stopping is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return not self._stopping.is_set()

    # --- HTTP -------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                method, path, _ = request_line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                raw = await reader.readexactly(length) if length else b""
                keep_open = await self._route(method, path.split("?")[0], headers, raw, writer)
                if not keep_open:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, asyncio.CancelledError):
            return
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: Any,
        extra: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode()
        head = [f"HTTP/1.1 {status} X", "content-type: application/json"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        head.append(f"content-length: {len(data)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        await writer.drain()

    async def _route(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        raw: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        if method == "POST" and path == "/_control":
            fields = json.loads(raw or b"{}")
            self.configure(**fields)
            await self._send(writer, 200, {"ok": True})
            return True
        if method == "POST" and path == "/_reset":
            self.reset()
            await self._send(writer, 200, {"ok": True})
            return True
        if method == "GET" and path == "/_requests":
            await self._send(writer, 200, {"requests": self.requests})
            return True
        if method == "POST" and path.rstrip("/").endswith("/chat/completions"):
            body = json.loads(raw or b"{}")
            with self._lock:
                self.requests.append(body)
            return await self._completion(body, writer)
        await self._send(writer, 404, {"error": {"message": "not found", "type": "not_found"}})
        return True

    def _answer_for(self, body: dict[str, Any]) -> str:
        b = self.behaviour
        last = _last_user_text(body)
        lowered = last.lower()
        for keyword, answer in b.script.items():
            if keyword.lower() in lowered:
                return answer
        if callable(b.content):
            return b.content(body)
        return last if b.content == ECHO else b.content

    async def _completion(self, body: dict[str, Any], writer: asyncio.StreamWriter) -> bool:
        b = self.behaviour
        if b.hang and not await self._sleep(b.hang):
            return False
        if b.disconnect:
            return False  # the caller closes the connection: no status line at all
        if b.garbled:
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
            await writer.drain()
            return False
        with self._lock:
            status = b.statuses.pop(0) if b.statuses else b.status
        if status != 200:
            extra = {}
            if b.retry_after is not None:
                extra["retry-after"] = str(b.retry_after)
            kind = "rate_limit_exceeded" if status == 429 else "server_error"
            error = {"error": {"message": f"test server status {status}", "type": kind}}
            await self._send(writer, status, error, extra)
            return True
        model = b.model or body.get("model", "test-model")
        answer = self._answer_for(body)
        prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages") or [])
        usage = {
            "prompt_tokens": max(1, prompt_chars // 4),
            "completion_tokens": len(_tokens(answer)),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        created = int(time.time())
        if not body.get("stream"):
            if b.ttft:
                await asyncio.sleep(b.ttft)
            result: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "stop",
                    }
                ],
            }
            if b.usage:
                result["usage"] = usage
            await self._send(writer, 200, result)
            return True
        try:
            return await self._stream(body, writer, answer, model, usage, completion_id, created)
        except ConnectionError:
            self.client_closed_streams += 1
            raise

    async def _stream(
        self,
        body: dict[str, Any],
        writer: asyncio.StreamWriter,
        answer: str,
        model: str,
        usage: dict[str, int],
        completion_id: str,
        created: int,
    ) -> bool:
        b = self.behaviour
        head = (
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            "cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        writer.write(head.encode())
        await writer.drain()

        def event(payload: Any) -> bytes:
            text = payload if isinstance(payload, str) else json.dumps(payload)
            data = f"data: {text}\n\n".encode()
            return f"{len(data):x}\r\n".encode() + data + b"\r\n"

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        if b.ttft and not await self._sleep(b.ttft):
            return False
        writer.write(event(chunk({"role": "assistant", "content": ""})))
        interval = 1.0 / b.tokens_per_second if b.tokens_per_second else 0.0
        for sent, piece in enumerate(_tokens(answer)):
            if b.drop_after is not None and sent >= b.drop_after:
                await writer.drain()
                writer.transport.abort()
                return False
            if b.malformed_after is not None and sent >= b.malformed_after:
                writer.write(event('{"id": "broken", "choices": [{"delta": {"content": '))
                writer.write(b"0\r\n\r\n")
                await writer.drain()
                return True
            if b.error_after is not None and sent >= b.error_after:
                error = {"message": "test server error event", "type": "server_error"}
                writer.write(event({"error": error}))
                writer.write(b"0\r\n\r\n")
                await writer.drain()
                return True
            writer.write(event(chunk({"content": piece})))
            if interval:
                await writer.drain()
                await asyncio.sleep(interval)
        if not b.finish:
            writer.write(b"0\r\n\r\n")  # a clean end, as a proxy that cut the stream sends
            await writer.drain()
            return True
        writer.write(event(chunk({}, finish="stop")))
        options = body.get("stream_options") or {}
        if b.usage and options.get("include_usage"):
            final = chunk({})
            final["choices"] = []
            final["usage"] = usage
            writer.write(event(final))
        writer.write(event("[DONE]"))
        if b.end_delay:
            await writer.drain()
            if not await self._sleep(b.end_delay):
                return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds to first token")
    parser.add_argument("--tps", type=float, default=0.0, help="tokens per second (0 = max)")
    parser.add_argument("--content", default=DEFAULT_CONTENT, help='answer text, or "@echo"')
    parser.add_argument("--tokens", type=int, default=0, help="answer with N words instead")
    args = parser.parse_args(argv)
    server = OpenAITestServer(args.host, args.port)
    content = " ".join(f"palavra{i}" for i in range(args.tokens)) if args.tokens else args.content
    server.configure(ttft=args.ttft, tokens_per_second=args.tps, content=content)
    server.initial = copy.deepcopy(server.behaviour)

    async def run() -> None:
        srv = await server.serve()
        print(f"OpenAI test server on {server.base_url}", flush=True)
        async with srv:
            await srv.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
