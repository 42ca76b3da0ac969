"""CPU the chat spends reading a streamed answer, on each of the SDK's transports (httpx, aiohttp).

Run from the repository root::

    .venv/bin/python benchmarks/sdk_transport.py   # --concurrency 50 --rounds 10 --repeat 3

It starts the loopback test OpenAI server (``tests/openai_server.py``: 50 ms to the first token,
then 60 tokens at 100 tokens/s) on core 0. Then, for each transport in turn (``--repeat`` times,
alternating), a child process pinned to core 1 streams ``--concurrency`` answers at a time through
``OpenAIBackend.stream`` (the chat's own read path: ``with_streaming_response`` and
``iter_lines``), one warm-up round and then ``--rounds`` measured ones, and reports its own CPU
(user + system, ``os.times()``) over the measured rounds. It prints CPU ms per request and content
chunks per request for each run, the median per transport and the ratio httpx / aiohttp, and stops
the server. Without ``taskset`` (or with one core) nothing is pinned and the figures are noisier.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import servers  # noqa: E402

TRANSPORTS = ("httpx", "aiohttp")


# --- the child: one transport, measured ------------------------------------------------------


async def _measure(concurrency: int, rounds: int) -> dict[str, float]:
    from sophie_chat.ai.base import ChatPrompt, Turn
    from sophie_chat.ai.openai import OpenAIBackend
    from sophie_chat.ai.transport import close_clients

    # A prompt of the chat's usual size: a long system prompt and a question.
    prompt = ChatPrompt(
        messages=[
            {"role": "system", "content": "Você é a Sophie. " * 150},
            {"role": "user", "content": "Como faço para contratar um eletricista?"},
        ]
    )

    async def one(n: int) -> int:
        turn = Turn(session_id=f"bench-{n}", text="Como faço para contratar um eletricista?")
        return sum([1 async for _ in OpenAIBackend().stream(prompt, turn)])

    async def round_of(start: int) -> int:
        return sum(await asyncio.gather(*(one(start + i) for i in range(concurrency))))

    await round_of(0)  # warm-up: connections, imports, the SDK's first-call work
    before, started = os.times(), time.perf_counter()
    chunks = 0
    for r in range(rounds):
        chunks += await round_of((r + 1) * concurrency)
    after, wall = os.times(), time.perf_counter() - started
    await close_clients()
    requests = concurrency * rounds
    cpu = (after.user - before.user) + (after.system - before.system)
    return {"cpu_ms": 1000 * cpu / requests, "chunks": chunks / requests, "wall_s": wall}


def child(transport: str, base_url: str, concurrency: int, rounds: int) -> None:
    import django
    from django.conf import settings

    settings.configure(
        CHAT_CONFIG={
            "OPENAI_API_KEY": "sk-bench-dummy",
            "OPENAI_BASE_URL": base_url,
            "OPENAI_MODEL": "bench-model",
            "OPENAI_HTTP_CLIENT": transport,
            "OPENAI_TIMEOUT": 30.0,
        },
        LOGGING_CONFIG=None,
    )
    django.setup()
    try:  # the loop of a production worker (uvicorn[standard])
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    figures = run(_measure(concurrency, rounds))
    print(json.dumps({"transport": transport, "loop": run.__module__, **figures}), flush=True)


# --- the parent: the server, the runs, the table ---------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=50, help="answers streamed at once")
    parser.add_argument("--rounds", type=int, default=10, help="measured rounds per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per transport, alternating")
    parser.add_argument("--tokens", type=int, default=60, help="tokens per answer")
    parser.add_argument("--child", choices=TRANSPORTS, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.base_url, args.concurrency, args.rounds)
        return 0

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    port = servers.free_port()
    words = " ".join(f"palavra{i}" for i in range(args.tokens))  # a token each
    server = servers.start_openai(port, 0.05, 100.0, words)  # on core 0, when it can pin
    results: dict[str, list[dict[str, float]]] = {t: [] for t in TRANSPORTS}
    try:
        pinned = "server on core 0, client on core 1" if servers.can_pin() else "not pinned"
        print(f"{args.concurrency} answers at a time x {args.rounds} rounds per run; {pinned}")
        for _ in range(args.repeat):
            for transport in TRANSPORTS:
                cmd = [sys.executable, __file__, "--child", transport]
                cmd += ["--base-url", f"http://127.0.0.1:{port}/v1"]
                cmd += ["--concurrency", str(args.concurrency), "--rounds", str(args.rounds)]
                done = subprocess.run(
                    servers._prefix("1") + cmd,
                    cwd=REPO,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=True,
                )
                run = json.loads(done.stdout.strip().splitlines()[-1])
                results[transport].append(run)
                print(
                    f"  {transport:<8} {run['cpu_ms']:6.2f} ms CPU/request, "
                    f"{run['chunks']:.0f} chunks/request, {run['wall_s']:.1f} s ({run['loop']})"
                )
    finally:
        server.terminate()
        server.wait(10)
    median = {t: statistics.median(r["cpu_ms"] for r in results[t]) for t in TRANSPORTS}
    for transport in TRANSPORTS:
        print(f"{transport:<8} median {median[transport]:.2f} ms CPU per request")
    if median["aiohttp"] > 0:  # os.times() counts in clock ticks: a tiny run may measure 0
        print(f"httpx / aiohttp: {median['httpx'] / median['aiohttp']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
