"""Load generator: N concurrent chat sessions over real WebSockets (the ``websockets`` client).

Each session is its own anonymous visitor (a Django session cookie), sends the server's Origin,
offers the ``sophie-chat.v1`` subprotocol, and talks protocol v1: ``message`` out; ``ack``,
``assistant.start``, ``assistant.delta``... and ``assistant.done`` back. Every reply is checked:
delta indexes contiguous from 0, one ``seq``, concatenated deltas equal to ``done.text``; any
violation, error frame, fallback answer or timeout counts as an error.

Workloads: the standard one (each session sends ``turns`` messages, each 1-3 s after the previous
reply ended; 20 % of them repeat a few common questions, each asked as the first message of a
new chat, which the cache should answer) and the idle-heavy one (all sessions connected, each
sending a message every 20-40 s).

Run one configuration end to end (servers included) with
``python benchmarks/loadgen.py --server uvicorn --db postgres --sessions 100``; see ``--help``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin, Subprotocol

SUBPROTOCOL = Subprotocol("sophie-chat.v1")
# Exactly 60 tokens as the test OpenAI server splits them (word pieces), a little markdown too.
ANSWER = (
    "Claro! Para **contratar um profissional** no Contrata Já, busque o serviço desejado, "
    "compare avaliações, preços e disponibilidade na sua região e envie um pedido de orçamento. "
    "O prestador responde em poucas horas. Depois de aceitar, o pagamento fica protegido até a "
    "conclusão do serviço. Se algo der errado, fale com o suporte pelo chat, que respondemos "
    "rapidinho. Posso ajudar mais?"
)
COMMON_QUESTIONS = [
    "Como faço para contratar um eletricista?",
    "Quais são as formas de pagamento aceitas?",
    "Como cancelo um pedido?",
    "Como me cadastro como prestador de serviços?",
    "O pagamento é seguro?",
    "Quanto tempo o prestador leva para responder?",
]
TOPICS = ["pintura", "encanamento", "faxina", "jardinagem", "mudança", "montagem de móveis"]


@dataclass
class Workload:
    sessions: int = 100
    turns: int = 10  # messages per session (standard workload)
    think: tuple[float, float] = (1.0, 3.0)  # seconds after the previous reply ended
    repeat_share: float = 0.2  # share of messages that repeat a common question
    idle: bool = False  # idle-heavy: one message every ``interval`` during ``window``
    interval: tuple[float, float] = (20.0, 40.0)  # seconds between an idle session's messages
    window: float = 45.0  # seconds during which idle sessions start new messages
    turn_timeout: float = 30.0  # seconds until a reply without its done frame is an error
    connect_concurrency: int = 100  # handshakes in flight at once while connecting
    # seconds: no session starts a message after this (keeps a saturated server's run bounded;
    # the standard workload needs about 35 s when the server keeps up)
    max_duration: float = 60.0
    seed: int = 8


@dataclass
class TurnResult:
    session: int
    sent: float
    acked: float | None = None  # the ack: the message is stored
    first: float | None = None  # first delta (or done, when a reply has no delta)
    done: float | None = None
    source: str = ""
    deltas: int = 0
    repeated: bool = False
    error: str = ""


@dataclass
class LoadResult:
    turns: list[TurnResult] = field(default_factory=list)
    connect_all_s: float = 0.0
    connect_client_cpu_s: float = 0.0  # the load generator's own CPU while connecting
    connect_errors: list[str] = field(default_factory=list)
    load_s: float = 0.0
    capped: bool = False  # the run hit max_duration before every session sent all its messages
    client_cpu_s: float = 0.0
    loop_lag_ms: list[float] = field(default_factory=list)


def question(rng: random.Random, session: int, turn: int, share: float) -> tuple[str, bool]:
    if rng.random() < share:
        return rng.choice(COMMON_QUESTIONS), True
    topic = rng.choice(TOPICS)
    return f"Vocês atendem {topic} no meu bairro? (visitante {session}, pergunta {turn})", False


async def open_session(url: str, origin: str, cookie: str | None) -> ClientConnection:
    """Connect one visitor and wait for the ``session`` frame that every connect gets first."""
    headers = {"Cookie": cookie} if cookie else {}
    ws = await connect(
        url,
        origin=Origin(origin),
        subprotocols=[SUBPROTOCOL],
        additional_headers=headers,
        open_timeout=30,
        ping_interval=None,  # browsers do not ping; the server's own keepalive is measured
        max_size=2**20,
        max_queue=None,
    )
    if ws.subprotocol != SUBPROTOCOL:
        await ws.close()
        raise RuntimeError(f"subprotocol {ws.subprotocol!r}")
    async with asyncio.timeout(30):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("type") == "session":
                return ws
            if frame.get("type") == "error":
                raise RuntimeError(f"error frame on connect: {frame.get('code')}")


async def open_all(
    url: str, origin: str, cookies: list[str | None], concurrency: int
) -> tuple[list[ClientConnection | None], list[str], float]:
    gate = asyncio.Semaphore(concurrency)
    errors: list[str] = []

    async def one(cookie: str | None) -> ClientConnection | None:
        async with gate:
            try:
                return await open_session(url, origin, cookie)
            except Exception as exc:
                errors.append(f"connect: {exc!r}"[:200])
                return None

    started = time.perf_counter()
    conns = await asyncio.gather(*(one(c) for c in cookies))
    return list(conns), errors, time.perf_counter() - started


async def _close_chat(ws: ClientConnection, timeout: float) -> None:
    """End the chat session (``close`` -> ``closed``): the next message starts a fresh one."""
    await ws.send(json.dumps({"type": "close"}))
    async with asyncio.timeout(timeout):
        while json.loads(await ws.recv()).get("type") != "closed":
            pass


async def turn(
    ws: ClientConnection, session: int, text: str, timeout: float, fresh: bool = False
) -> TurnResult:
    """Send one message and read its whole reply, checking the delta stream as it comes.

    ``fresh`` first closes the chat session, so the message opens a new one with no history:
    the answer cache only shares answers to prompts without personal parts, and the history of
    earlier turns is one. A common question asked first in a new chat is what the cache serves.
    """
    if fresh:
        try:
            await _close_chat(ws, timeout)
        except Exception as exc:
            return TurnResult(session=session, sent=time.perf_counter(), error=f"close: {exc!r}")
    message_id = str(uuid.uuid4())
    page = {"url": "/", "title": "Contrata Já", "referrer": "", "status": 200}
    frame = json.dumps({"type": "message", "id": message_id, "text": text, "page": page})
    result = TurnResult(session=session, sent=time.perf_counter())
    await ws.send(frame)
    user_seq: int | None = None  # from our ack
    seq: int | None = None  # the reply's, from the assistant.start that answers our message
    parts: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                raw = await ws.recv()
                now = time.perf_counter()
                data: dict[str, Any] = json.loads(raw)
                kind = data.get("type")
                if kind == "ack" and data.get("id") == message_id:
                    user_seq = data.get("seq")
                    result.acked = now
                elif kind == "assistant.start" and data.get("reply_to") == user_seq:
                    seq = data.get("seq")
                elif kind == "assistant.delta":
                    if seq is None or data.get("seq") != seq:
                        continue  # the tail of an earlier reply that timed out on our side
                    if result.first is None:
                        result.first = now
                    if data.get("index") != len(parts):
                        result.error = "delta_out_of_order"
                    parts.append(str(data.get("text", "")))
                elif kind == "assistant.done":
                    if seq is None or data.get("seq") != seq:
                        continue
                    result.done = now
                    result.first = result.first or now
                    result.deltas = len(parts)
                    result.source = str(data.get("source", ""))
                    if parts and "".join(parts) != data.get("text"):
                        result.error = result.error or "deltas_differ_from_text"
                    elif data.get("status", "complete") != "complete":
                        result.error = result.error or f"status_{data.get('status')}"
                    elif result.source not in ("ai", "cache"):
                        result.error = result.error or f"source_{result.source}"
                    return result
                elif kind == "error" and data.get("id") in (None, message_id):
                    result.error = f"error_{data.get('code')}"
                    return result
    except TimeoutError:
        result.error = "timeout"
    except Exception as exc:  # a dropped connection is an error, never a crash of the run
        result.error = f"connection: {type(exc).__name__}"
    return result


async def _session(
    ws: ClientConnection,
    index: int,
    work: Workload,
    out: list[TurnResult],
    end: float,
    load: LoadResult,
) -> None:
    rng = random.Random(work.seed * 100_003 + index)
    if work.idle:
        # Spread over one mean interval, so the steady rate (sessions / mean interval) holds
        # from the start instead of a burst.
        await asyncio.sleep(rng.uniform(0.0, sum(work.interval) / 2))
    else:
        await asyncio.sleep(rng.uniform(*work.think))  # sessions arrive spread, not in one burst
    number = 0
    while True:
        text, repeated = question(rng, index, number, work.repeat_share)
        result = await turn(ws, index, text, work.turn_timeout, fresh=repeated)
        result.repeated = repeated
        out.append(result)
        number += 1
        if result.error.startswith("connection"):
            return
        if work.idle:
            pause = rng.uniform(*work.interval)
            if time.perf_counter() + pause > end:
                return
        else:
            if number >= work.turns:
                return
            pause = rng.uniform(*work.think)
            if time.perf_counter() + pause > end:
                load.capped = True
                return
        await asyncio.sleep(pause)


async def _watch_loop(samples: list[float], stop: asyncio.Event) -> None:
    """Record how late the load generator's own loop wakes up: a busy client inflates latency."""
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.05)
        samples.append((time.perf_counter() - before - 0.05) * 1000)


async def drive(conns: list[ClientConnection | None], work: Workload) -> LoadResult:
    """Run the workload over already open sessions; returns every turn's timings."""
    from benchmarks.servers import self_cpu

    load = LoadResult()
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_loop(load.loop_lag_ms, stop))
    cpu0, started = self_cpu(), time.perf_counter()
    end = started + (work.window if work.idle else work.max_duration)
    await asyncio.gather(
        *(
            _session(ws, i, work, load.turns, end, load)
            for i, ws in enumerate(conns)
            if ws is not None
        )
    )
    load.load_s = time.perf_counter() - started
    load.client_cpu_s = self_cpu() - cpu0
    stop.set()
    await watcher
    return load


async def close_all(conns: list[ClientConnection | None]) -> None:
    async def one(ws: ClientConnection) -> None:
        try:
            async with asyncio.timeout(10):
                await ws.close()
        except Exception:  # the server may already have gone; nothing to measure here
            return

    await asyncio.gather(*(one(ws) for ws in conns if ws is not None))


def main() -> None:
    from benchmarks.scenario import cli

    cli()


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
