"""One benchmark configuration end to end: servers up, load on each target, figures out.

A *target* is a WebSocket route of the same server application: ``ours`` (Sophie's consumer at
``/ws/sophie-chat/``) or ``baseline`` (the bare relay at ``/ws/baseline/``). Each target gets a
fresh server process, so peak memory and CPU belong to it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks import loadgen, servers

PATHS = {"ours": "/ws/sophie-chat/", "baseline": "/ws/baseline/"}
TTFT = 0.3  # seconds: the test OpenAI server's time to first token
TOKENS = 60  # tokens per answer (loadgen.ANSWER)
TPS = 100.0  # tokens per second


@dataclass
class Config:
    server: str = "uvicorn"
    db: str = "postgres"
    sessions: int = 100
    idle: bool = False
    workers: int = 1
    deflate: bool = False
    targets: tuple[str, ...] = ("ours", "baseline")
    # py-spy records the server during the load: "wall" (every thread) or "gil" (CPU in Python)
    profile: str = ""

    @property
    def name(self) -> str:
        kind = "idle" if self.idle else "std"
        extra = f"-w{self.workers}" if self.workers > 1 else ""
        extra += "-deflate" if self.deflate else ""
        return f"{self.server}-{self.db}-{self.sessions}-{kind}{extra}"


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1]


def _ms(values: list[float]) -> dict[str, float | None]:
    return {f"p{q}": _round(pct(values, q)) for q in (50, 95, 99)}


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def summarize(
    load: loadgen.LoadResult, usage: dict[str, dict[str, float]], stats: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    queries = {name: snap["queries"] for name, snap in stats.items()}
    done = [t for t in load.turns if not t.error and t.first and t.done]
    nominal_total = TTFT + TOKENS / TPS
    modelled = [t for t in done if t.source != "cache"]
    from_cache = [t for t in done if t.source == "cache"]
    ttft = [((t.first or 0) - t.sent - TTFT) * 1000 for t in modelled]
    total = [((t.done or 0) - t.sent - nominal_total) * 1000 for t in modelled]
    cached = [((t.first or 0) - t.sent) * 1000 for t in from_cache]
    # Where the wait goes: to the ack (the message stored), then to the first piece.
    ack = [((t.acked or t.first or 0) - t.sent) * 1000 for t in modelled]
    cache_ack = [((t.acked or t.first or 0) - t.sent) * 1000 for t in from_cache]
    cache_after_ack = [((t.first or 0) - (t.acked or t.first or 0)) * 1000 for t in from_cache]
    errors: dict[str, int] = {}
    for t in load.turns:
        if t.error:
            errors[t.error] = errors.get(t.error, 0) + 1
    for e in load.connect_errors:
        errors[e] = errors.get(e, 0) + 1
    n_turns = len(load.turns)
    sessions = len(load.turns and {t.session for t in load.turns})
    before, connected, after = usage["before"], usage["connected"], usage["after"]
    q_connect = queries["connected"]["total"] - queries["before"]["total"]
    per_kind = {
        k: round((v - queries["connected"].get(k, 0)) / max(1, n_turns), 2)
        for k, v in queries["after"].items()
        if k != "total" and v - queries["connected"].get(k, 0) > 0
    }
    turn_sql_s = stats["after"]["sql_s"]["total"] - stats["connected"]["sql_s"]["total"]
    units = stats["after"]["db_units"]["seconds"] - stats["connected"]["db_units"]["seconds"]
    sql_ms_by_kind = {
        k: round((v - stats["connected"]["sql_s"].get(k, 0)) * 1000 / max(1, n_turns), 2)
        for k, v in stats["after"]["sql_s"].items()
        if k != "total" and v - stats["connected"]["sql_s"].get(k, 0) > 0
    }
    return {
        "turns": n_turns,
        "sessions_sending": sessions,
        "turns_per_s": round(n_turns / load.load_s, 1) if load.load_s else None,
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "added_ttft_ms": _ms(ttft),
        "added_total_ms": _ms(total),
        "cache_first_delta_ms": _ms(cached) | {"n": len(cached)},
        "cache_ack_ms": _ms(cache_ack),
        "cache_ack_to_first_delta_ms": _ms(cache_after_ack),
        "ack_ms": _ms(ack),
        "deltas_per_reply": _round(statistics.mean([t.deltas for t in done]) if done else None),
        "server_cpu_ms_per_turn": _round(
            (after["cpu_s"] - connected["cpu_s"]) * 1000 / max(1, n_turns)
        ),
        "server_cpu_share": _round((after["cpu_s"] - connected["cpu_s"]) / load.load_s, 2),
        # Time the server's threads were ready to run but the core was busy (with anything,
        # other engineers' tests included): the noise in these figures.
        "server_runqueue_wait_share": _round(
            (after.get("runqueue_wait_s", 0) - connected.get("runqueue_wait_s", 0)) / load.load_s,
            2,
        ),
        "server_peak_rss_mb": _round(after["hwm_kb"] / 1024),
        "rss_per_connected_session_kb": _round(
            (connected["rss_kb"] - before["rss_kb"]) / max(1, usage["meta"]["connected"])
        ),
        "connect_all_s": _round(load.connect_all_s, 2),
        # The server's CPU for the connect phase (handshakes, sessions, group joins) per socket.
        "server_cpu_ms_per_connect": _round(
            (connected["cpu_s"] - before["cpu_s"]) * 1000 / max(1, usage["meta"]["connected"])
        ),
        "client_cpu_s_connecting": _round(load.connect_client_cpu_s, 2),
        "queries_per_connect": _round(q_connect / max(1, usage["meta"]["connected"]), 2),
        "queries_per_turn": _round(
            (queries["after"]["total"] - queries["connected"]["total"]) / max(1, n_turns), 2
        ),
        "queries_per_turn_by_kind": per_kind,
        "sql_ms_per_turn": _round(turn_sql_s * 1000 / max(1, n_turns), 2),
        "sql_ms_per_turn_by_kind": sql_ms_by_kind,
        # The share of the load during which the one database thread was busy: near 1, every
        # database unit waits in line behind the others.
        "db_thread_busy": _round(units / load.load_s, 2) if load.load_s else None,
        "db_unit_ms_per_turn": _round(units * 1000 / max(1, n_turns), 2),
        "load_s": _round(load.load_s),
        "capped": load.capped,
        "client_cpu_share": _round(load.client_cpu_s / load.load_s, 2) if load.load_s else None,
        "client_loop_lag_ms": _ms(load.loop_lag_ms),
        # The garbage collector's full passes while the load ran, and the longest one so far: a
        # pass stalls every socket of the worker.
        "gc_full_passes": _gc(stats, "passes"),
        "gc_full_ms": _gc(stats, "total_ms"),
        "gc_full_max_ms": stats["after"].get("gc", {}).get("2", {}).get("max_ms"),
    }


def _gc(stats: dict[str, dict[str, Any]], figure: str) -> float | None:
    after = stats["after"].get("gc", {}).get("2")
    if after is None:
        return None
    before = stats["connected"].get("gc", {}).get("2", {}).get(figure, 0)
    return _round(after[figure] - before)


WARM_UP_VISITORS = len(loadgen.COMMON_QUESTIONS) + 1


async def _warm_up(url: str, origin: str, cookies: list[str]) -> None:
    """Import everything and put the common questions in the cache before measuring.

    One visitor per question, so they run at once and each opens a history-less chat.
    """

    async def ask(cookie: str, text: str) -> None:
        ws = await loadgen.open_session(url, origin, cookie)
        try:
            result = await loadgen.turn(ws, -1, text, 30, fresh=True)
            if result.error:
                raise RuntimeError(f"warm-up turn failed: {result.error}")
        finally:
            await ws.close()

    questions = ["Olá, tudo bem? (aquecimento)", *loadgen.COMMON_QUESTIONS]
    await ask(cookies[0], questions[0])  # imports and first connections, alone
    await asyncio.gather(*(ask(c, q) for c, q in zip(cookies[1:], questions[1:], strict=True)))


async def run_target(
    config: Config, target: str, openai_url: str, cookie_name: str, keys: list[str]
) -> dict[str, Any]:
    work = loadgen.Workload(sessions=config.sessions, idle=config.idle)
    server = servers.start_server(
        config.server, config.db, openai_url, workers=config.workers, deflate=config.deflate
    )
    try:
        url = f"ws://127.0.0.1:{server.port}{PATHS[target]}"
        cookies = [f"{cookie_name}={key}" for key in keys]
        await _warm_up(url, server.origin, cookies[-WARM_UP_VISITORS:])
        await asyncio.sleep(0.5)
        pids = server.pids()
        usage = {"before": servers.proc_usage(pids)}
        stats = {"before": servers.fetch_stats(server)}
        spy = None
        if config.profile == "connect":  # the connection phase alone, GIL-holding samples
            spy = servers.start_profiler(pids[0], f"{config.name}-{target}-connect", gil=True)
        client_cpu = servers.self_cpu()
        conns, errors, connect_s = await loadgen.open_all(
            url, server.origin, list(cookies[: config.sessions]), work.connect_concurrency
        )
        client_cpu = servers.self_cpu() - client_cpu
        if spy is not None:
            servers.stop_profiler(spy)
        await asyncio.sleep(0.5)  # let the last session frames' work finish before measuring
        usage["connected"] = servers.proc_usage(pids)
        stats["connected"] = await asyncio.to_thread(servers.fetch_stats, server)
        usage["meta"] = {"connected": sum(1 for c in conns if c is not None)}
        spy = None
        if config.profile in ("wall", "gil"):
            name = f"{config.name}-{target}-{config.profile}"
            spy = servers.start_profiler(pids[0], name, gil=config.profile == "gil")
        load = await loadgen.drive(conns, work)
        if spy is not None:
            servers.stop_profiler(spy)
        load.connect_all_s, load.connect_errors = connect_s, errors
        load.connect_client_cpu_s = client_cpu
        usage["after"] = servers.proc_usage(pids)
        stats["after"] = await asyncio.to_thread(servers.fetch_stats, server)
        await loadgen.close_all(conns)
        figures = summarize(load, usage, stats)
        figures["connected"] = usage["meta"]["connected"]
        figures["experiments"] = stats["after"].get("experiments", [])
        return figures
    finally:
        server.stop()


async def run_config(config: Config, openai_url: str, visitors: tuple[str, list[str]]) -> dict:
    """Every target of one configuration; ``visitors`` holds ``sessions + WARM_UP_VISITORS``."""
    cookie_name, keys = visitors
    result: dict[str, Any] = {"config": asdict(config), "name": config.name, "targets": {}}
    for target in config.targets:
        servers.flush_redis()
        started = time.monotonic()
        result["targets"][target] = await run_target(config, target, openai_url, cookie_name, keys)
        result["targets"][target]["wall_s"] = round(time.monotonic() - started, 1)
    ours, base = result["targets"].get("ours"), result["targets"].get("baseline")
    if ours and base and ours["added_ttft_ms"]["p95"] and base["added_ttft_ms"]["p95"]:
        ratio = ours["added_ttft_ms"]["p95"] / base["added_ttft_ms"]["p95"]
        result["ttft_p95_ratio"] = round(ratio, 2)
    return result


def cli() -> None:
    parser = argparse.ArgumentParser(description="Run one benchmark configuration.")
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--idle", action="store_true", help="idle-heavy: a message every 20-40 s")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--deflate", action="store_true", help="per-message deflate on (uvicorn)")
    parser.add_argument("--targets", default="ours,baseline")
    parser.add_argument("--json", action="store_true", help="print the raw figures too")
    parser.add_argument(
        "--profile",
        choices=["wall", "gil", "connect"],
        help="py-spy the server under load (wall, gil) or while the sessions connect (connect)",
    )
    parser.add_argument("--tree", metavar="REF", help="serve a committed tree (git archive REF)")
    parser.add_argument("--nice", type=int, default=0, help="niceness of the processes started")
    args = parser.parse_args()
    config = Config(
        args.server,
        args.db,
        args.sessions,
        args.idle,
        args.workers,
        args.deflate,
        tuple(args.targets.split(",")),
        args.profile or "",
    )
    from benchmarks.report import markdown
    from benchmarks.run import run_configs

    servers.NICE = args.nice
    if args.tree:
        servers.SOURCE = servers.export_tree(args.tree)
    results = run_configs([config])
    if args.json:
        print(json.dumps(results, indent=2))
    print(markdown(results))
