"""Text and Markdown tables of benchmark results (the dicts that scenario.run_config returns)."""

from __future__ import annotations

from typing import Any

COLUMNS = [
    ("target", lambda c, t, f: t),
    ("sessions", lambda c, t, f: f["connected"]),
    ("turns", lambda c, t, f: f"{f['turns']}{' (capped)' if f.get('capped') else ''}"),
    ("turns/s", lambda c, t, f: f["turns_per_s"]),
    ("errors", lambda c, t, f: f["errors"]),
    ("added TTFT p50/p95/p99 ms", lambda c, t, f: _trio(f["added_ttft_ms"])),
    ("added total p50/p95/p99 ms", lambda c, t, f: _trio(f["added_total_ms"])),
    ("cache hit 1st delta p95 ms (n)", lambda c, t, f: _cache(f["cache_first_delta_ms"])),
    ("CPU ms/turn", lambda c, t, f: f["server_cpu_ms_per_turn"]),
    ("peak RSS MB", lambda c, t, f: f["server_peak_rss_mb"]),
    ("KB/connected session", lambda c, t, f: f["rss_per_connected_session_kb"]),
    ("connect all s", lambda c, t, f: f["connect_all_s"]),
    ("CPU ms/connect", lambda c, t, f: f.get("server_cpu_ms_per_connect")),
    ("client CPU s connecting", lambda c, t, f: f.get("client_cpu_s_connecting")),
    ("SQL/connect", lambda c, t, f: f["queries_per_connect"]),
    ("SQL/turn", lambda c, t, f: f["queries_per_turn"]),
    ("DB-thread ms/turn (busy)", lambda c, t, f: _busy(f)),
    ("frames/reply", lambda c, t, f: f["deltas_per_reply"]),
    ("server CPU share", lambda c, t, f: f["server_cpu_share"]),
    ("server run-queue wait", lambda c, t, f: f.get("server_runqueue_wait_share")),
    ("client CPU", lambda c, t, f: f["client_cpu_share"]),
    ("full GC passes (max ms)", lambda c, t, f: _gc(f)),
]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _trio(d: dict[str, Any]) -> str:
    return " / ".join(_fmt(d.get(k)) for k in ("p50", "p95", "p99"))


def _busy(f: dict[str, Any]) -> str:
    if f.get("db_unit_ms_per_turn") is None:
        return "-"
    return f"{_fmt(f['db_unit_ms_per_turn'])} ({_fmt(f['db_thread_busy'])})"


def _gc(f: dict[str, Any]) -> str:
    if f.get("gc_full_passes") is None:
        return "-"
    return f"{_fmt(f['gc_full_passes'])} ({_fmt(f.get('gc_full_max_ms'))})"


def _cache(d: dict[str, Any]) -> str:
    return f"{_fmt(d.get('p95'))} ({d.get('n', 0)})" if d.get("n") else "-"


def config_lines(result: dict[str, Any]) -> str:
    lines = []
    for target, figures in result["targets"].items():
        parts = [f"{name}={fn(result['config'], target, figures)}" for name, fn in COLUMNS[1:]]
        lines.append(f"  {target}: " + ", ".join(parts))
        if figures["error_kinds"]:
            lines.append(f"    error kinds: {figures['error_kinds']}")
        if figures["queries_per_turn_by_kind"]:
            lines.append(f"    SQL per turn by kind: {figures['queries_per_turn_by_kind']}")
            lines.append(f"    SQL ms per turn by kind: {figures['sql_ms_per_turn_by_kind']}")
    if "ttft_p95_ratio" in result:
        lines.append(f"  added TTFT p95 ours/baseline = {result['ttft_p95_ratio']}")
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    head = ["configuration", *(name for name, _ in COLUMNS), "p95 ratio"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for result in results["configs"]:
        for target, figures in result["targets"].items():
            cells = [result["name"]]
            cells += [_fmt(fn(result["config"], target, figures)) for _, fn in COLUMNS]
            cells.append(_fmt(result.get("ttft_p95_ratio")) if target == "ours" else "")
            rows.append("| " + " | ".join(cells) + " |")
    versions = ", ".join(f"{k} {v}" for k, v in results["versions"].items())
    work = results["workload"]
    return (
        f"# Benchmark results ({results['started_at']}, commit {results['commit']})\n\n"
        f"Test model: {work['ttft_s'] * 1000:g} ms to first token, {work['tokens']} tokens at "
        f"{work['tokens_per_s']:g} tokens/s. Standard workload: 10 messages per session, each "
        "1-3 s after the previous reply; 20 % repeated questions. Idle workload: every session "
        "connected, one message every 20-40 s. Server on one core (taskset -c 1); load generator "
        "and test model on the other. *Added* = client-observed time minus the model's own "
        "(300 ms to first token; 900 ms in total); cache hits are excluded from it and shown "
        "apart (absolute). Several workers: behind nginx, every process free to run on every "
        "core.\n\n" + "\n".join(rows) + _skipped(results) + f"\n\nVersions: {versions}. "
        f"Python {results['machine']['python']}, {results['machine']['cpus']} CPUs. "
        f"Run took {results.get('wall_s', 0):g} s.\n"
    )


def _skipped(results: dict[str, Any]) -> str:
    skipped = results.get("skipped") or []
    return f"\n\nSkipped (nginx not installed): {', '.join(skipped)}." if skipped else ""


DOC_COLUMNS = [
    "target",
    "sessions",
    "turns",
    "turns/s",
    "errors",
    "added TTFT p50/p95/p99 ms",
    "added total p50/p95/p99 ms",
    "cache hit 1st delta p95 ms (n)",
    "CPU ms/turn",
    "peak RSS MB",
    "KB/connected session",
    "connect all s",
    "CPU ms/connect",
    "SQL/turn",
    "full GC passes (max ms)",
]


def rst(results: dict[str, Any]) -> str:
    """The main columns as a reST list-table, for docs/deployment.rst's capacity section."""
    picked = [(name, fn) for name, fn in COLUMNS if name in DOC_COLUMNS]
    lines = [
        ".. list-table:: Measured with ``python benchmarks/run.py`` "
        f"({results['started_at'][:10]}, commit {results['commit']})",
        "   :header-rows: 1",
        "",
        "   * - configuration",
    ]
    lines += [f"     - {name}" for name, _ in picked]
    for result in results["configs"]:
        for target, figures in result["targets"].items():
            lines.append(f"   * - {result['name']}")
            lines += [f"     - {_fmt(fn(result['config'], target, figures))}" for _, fn in picked]
    return "\n".join(lines) + "\n"
