"""A real chat client for the fault suites, over the ``websockets`` library.

It behaves like the widget: every message gets a client id and waits in an outbox until the
server acknowledges it; a refused message (``unavailable``, ``busy``, ``rate_limited``) stays in
the outbox and is resent; after a lost connection it reconnects, asks for what it missed with
``resume`` and resends the outbox. Its transcript (by seq) is what a user would see.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import OrderedDict
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

RETRY_CODES = {"unavailable", "busy", "rate_limited"}


class ChatClient:
    def __init__(self, port: int, key: str, name: str = "client") -> None:
        self.port, self.key, self.name = port, key, name
        self.ws: Any = None
        self.transcript: dict[int, dict[str, Any]] = {}
        self.outbox: OrderedDict[str, str] = OrderedDict()
        self.sent: dict[str, str] = {}  # every id ever sent -> text
        self.acks: dict[str, list[int]] = {}  # id -> seqs it was acknowledged with
        self.errors: list[dict[str, Any]] = []
        self.closes: list[tuple[float, int | None]] = []  # (time, close code)
        self.frames: list[dict[str, Any]] = []
        self.connects = 0
        self.session_id: str | None = None
        self.delta_gaps = 0
        self._reader: asyncio.Task[Any] | None = None
        self._resend: asyncio.TimerHandle | None = None
        self._changed = asyncio.Event()
        self.closing = False
        self._supervisor: asyncio.Task[Any] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- connection ------------------------------------------------------------------------
    async def connect(self, timeout: float = 20) -> None:
        """Connect (retrying while the server is away), catch up, resend the outbox."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            try:
                self.ws = await connect(
                    f"ws://127.0.0.1:{self.port}/ws/sophie-chat/",
                    origin=f"http://127.0.0.1:{self.port}",  # type: ignore[arg-type]
                    subprotocols=["sophie-chat.v1"],  # type: ignore[list-item]
                    additional_headers={"Cookie": f"sessionid={self.key}"},
                    compression=None,
                    proxy=None,
                    open_timeout=5,
                    close_timeout=1,
                )
                session = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
                if session.get("type") != "session":
                    raise ConnectionError(f"first frame {session.get('type')}")
                break
            except (
                OSError,
                InvalidHandshake,
                InvalidStatus,
                ConnectionClosed,
                ConnectionError,
                asyncio.TimeoutError,
            ) as exc:
                if self.ws is not None:
                    with contextlib.suppress(Exception):
                        await self.ws.close()
                    self.ws = None
                if time.monotonic() + delay > deadline:
                    raise ConnectionError(f"{self.name}: no connection: {exc!r}") from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
        self.connects += 1
        self.frames.append(session)
        # Null until the first message creates the session (its own frame sets it then).
        self.session_id = session["session_id"] or self.session_id
        for message in session["messages"]:
            self._merge(message)
        await self._raw_send({"type": "resume", "after_seq": self._resume_from()})
        for msg_id, text in list(self.outbox.items()):
            await self._raw_send({"type": "message", "id": msg_id, "text": text})
        self._reader = asyncio.ensure_future(self._read(self.ws))

    async def start(self, timeout: float = 20) -> None:
        """Connect, then keep reconnecting whenever the connection drops (until close())."""
        await self.connect(timeout)
        self._supervisor = asyncio.ensure_future(self._supervise())

    async def _supervise(self) -> None:
        while not self.closing:
            if self._reader is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(self._reader)
            if self.closing:
                return
            self.ws = None
            await asyncio.sleep(0.05)
            with contextlib.suppress(ConnectionError):
                await self.connect(timeout=60)

    def _resume_from(self) -> int:
        """Everything after the first unfinished message, else after the last one known."""
        unfinished = [s for s, m in self.transcript.items() if m["status"] == "streaming"]
        if unfinished:
            return min(unfinished) - 1
        return max(self.transcript, default=0)

    async def _halt_supervisor(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(BaseException):
                await self._supervisor

    async def close(self) -> None:
        self.closing = True
        await self._halt_supervisor()
        if self._resend is not None:
            self._resend.cancel()
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader

    async def drop(self) -> None:
        """Go away without a word (a closed laptop): abort the TCP connection."""
        self.closing = True
        await self._halt_supervisor()
        if self.ws is not None:
            self.ws.transport.abort()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader

    @property
    def connected(self) -> bool:
        return self.ws is not None and self._reader is not None and not self._reader.done()

    async def _raw_send(self, frame: dict[str, Any]) -> bool:
        if self.ws is None:
            return False
        try:
            await self.ws.send(json.dumps(frame))
            return True
        except ConnectionClosed:
            return False

    # --- messages --------------------------------------------------------------------------
    async def send(self, text: str) -> str:
        msg_id = str(uuid.uuid4())
        self.outbox[msg_id] = text
        self.sent[msg_id] = text
        await self._raw_send({"type": "message", "id": msg_id, "text": text})
        return msg_id

    async def stop_reply(self) -> None:
        await self._raw_send({"type": "stop"})

    def _schedule_resend(self, seconds: float) -> None:
        if self._resend is not None:
            return

        def fire() -> None:
            self._resend = None
            for msg_id, text in list(self.outbox.items()):
                task = asyncio.ensure_future(
                    self._raw_send({"type": "message", "id": msg_id, "text": text})
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        self._resend = asyncio.get_running_loop().call_later(max(0.1, seconds), fire)

    def _merge(self, message: dict[str, Any]) -> None:
        seq = message["seq"]
        known = self.transcript.get(seq)
        if (
            known is not None
            and known["status"] != "streaming"
            and message["status"] == "streaming"
        ):
            return  # never step back
        self.transcript[seq] = {
            "sender": message["sender"],
            "id": message.get("id"),
            "text": message["text"],
            "status": message["status"],
            "source": message.get("source", ""),
        }
        if message.get("id") and message["sender"] == "user":
            self.outbox.pop(message["id"], None)

    async def _read(self, ws: Any) -> None:
        try:
            async for raw in ws:
                frame = json.loads(raw)
                self.frames.append(frame)
                self._handle(frame)
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.closes.append((time.monotonic(), ws.close_code))
            self._changed.set()

    def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "session":
            # The first message creates the session: its frame comes before the ack. (A session
            # frame of another session, after a close, would start a new transcript; these
            # suites never close.)
            self.session_id = frame["session_id"] or self.session_id
            for message in frame["messages"]:
                self._merge(message)
        elif kind == "ack":
            self.acks.setdefault(frame["id"], []).append(frame["seq"])
            text = self.outbox.pop(frame["id"], None) or self.sent.get(frame["id"], "")
            self.transcript.setdefault(
                frame["seq"],
                {"sender": "user", "id": frame["id"], "text": text, "status": "complete"},
            )
        elif kind == "assistant.start":
            self.transcript.setdefault(
                frame["seq"], {"sender": "assistant", "id": None, "text": "", "status": "streaming"}
            )
            self.transcript[frame["seq"]]["next_index"] = 0
        elif kind == "assistant.delta":
            entry = self.transcript.setdefault(
                frame["seq"], {"sender": "assistant", "id": None, "text": "", "status": "streaming"}
            )
            if entry.get("next_index") == frame["index"]:
                entry["text"] += frame["text"]
                entry["next_index"] = frame["index"] + 1
            else:
                self.delta_gaps += 1
        elif kind == "assistant.done":
            self.transcript[frame["seq"]] = {
                "sender": "assistant",
                "id": None,
                "text": frame["text"],
                "status": frame["status"],
                "source": frame["source"],
                "degraded": bool(frame.get("degraded")),
            }
        elif kind == "history":
            for message in frame["messages"]:
                self._merge(message)
        elif kind == "user.message":
            self._merge(frame["message"])
        elif kind == "error":
            self.errors.append({**frame, "at": time.monotonic()})
            if frame.get("code") in RETRY_CODES and frame.get("id") in self.outbox:
                self._schedule_resend(float(frame.get("retry_after") or 0.3))

    # --- waiting ---------------------------------------------------------------------------
    def settled(self) -> bool:
        """Every message acknowledged, every reply finished (complete, stopped or incomplete)."""
        return not self.outbox and all(
            self.transcript.get(seq + 1, {}).get("status", "streaming") != "streaming"
            for seq, m in self.transcript.items()
            if m["sender"] == "user"
        )

    async def wait_for(self, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
        return True

    async def catch_up(self) -> None:
        """Ask again for unfinished replies (the widget does this every 15 s)."""
        await self._raw_send({"type": "resume", "after_seq": self._resume_from()})

    def view(self) -> dict[int, tuple[str, str | None, str, str]]:
        """The transcript as (sender, client id, text, status) by seq."""
        return {
            seq: (m["sender"], m["id"] if m["sender"] == "user" else None, m["text"], m["status"])
            for seq, m in sorted(self.transcript.items())
        }
