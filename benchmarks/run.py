"""``make bench``: the standard benchmark set, written to benchmarks/results/latest.{json,md}.

Usage: ``python benchmarks/run.py`` (the standard set, under 10 minutes), ``--quick`` (the first
configuration only), ``--full`` (every server x database x size), ``--only NAME[,NAME]``.
Everything runs on 127.0.0.1: a test OpenAI server and the load generator on core 0, the ASGI
server pinned to core 1; with several workers (behind nginx) the kernel places every process.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import loadgen, report, servers
from benchmarks.scenario import TPS, TTFT, WARM_UP_VISITORS, Config, run_config

OURS = ("ours",)
# About 10 minutes on a 2-core machine; the baseline runs where the comparison is the point.
STANDARD = [
    Config("uvicorn", "postgres", 100),
    Config("uvicorn", "postgres", 300),
    # Two workers behind nginx (Debian's nginx; skipped, and said so, where it is missing).
    Config("uvicorn", "postgres", 300, workers=2, targets=OURS),
    Config("uvicorn", "postgres", 1000, idle=True, targets=OURS),
    Config("daphne", "postgres", 100, targets=OURS),
    Config("uvicorn", "sqlite", 100, targets=OURS),
]
FULL = [
    Config(server, db, n, idle=n == 1000, targets=targets)
    for server in ("uvicorn", "daphne")
    for db in ("postgres", "sqlite")
    for n in (100, 300, 1000)
    for targets in [("ours", "baseline") if db == "postgres" else OURS]
]


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ["django", "channels", "channels-redis", "redis", "openai", "uvicorn", "daphne"]
    names += ["websockets", "psycopg"]
    found = {name: version(name) for name in names}
    try:
        found["uvloop"] = version("uvloop")
    except Exception:
        found["uvloop"] = "absent"
    return found


def _describe() -> str:
    """The commit served, and whether the working tree had local changes under src/."""
    if servers.SOURCE != servers.REPO:
        return servers.SOURCE.name.removeprefix("tree-")
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src", "example_project"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{head}+local changes" if dirty else head


def run_configs(configs: list[Config]) -> dict[str, Any]:
    servers.pin_self(0)
    started = time.monotonic()
    port = servers.free_port()
    openai = servers.start_openai(port, TTFT, TPS, loadgen.ANSWER)
    openai_url = f"http://127.0.0.1:{port}/v1"
    out: dict[str, Any] = {
        "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "versions": _versions(),
        "commit": _describe(),
        "workload": {"ttft_s": TTFT, "tokens": 60, "tokens_per_s": TPS},
        "configs": [],
    }
    prepared: dict[str, tuple[str, list[str]]] = {}
    try:
        for config in configs:
            if config.workers > 1 and not servers.nginx_available():
                print(f"== {config.name}: skipped, nginx is not installed", flush=True)
                out.setdefault("skipped", []).append(config.name)
                continue
            if config.db not in prepared:
                servers.prepare_db(config.db)
                most = max(c.sessions for c in configs if c.db == config.db)
                count = most + WARM_UP_VISITORS
                prepared[config.db] = servers.make_visitors(config.db, count)
            print(f"== {config.name}", flush=True)
            with servers.on_every_core([0, openai.pid], when=config.workers > 1):
                result = asyncio.run(run_config(config, openai_url, prepared[config.db]))
            print(report.config_lines(result), flush=True)
            out["configs"].append(result)
    finally:
        openai.terminate()
        openai.wait(10)
    out["wall_s"] = round(time.monotonic() - started, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true")
    group.add_argument("--full", action="store_true")
    group.add_argument("--only", help="comma-separated configuration names")
    parser.add_argument("--out", default=str(servers.RESULTS / "latest"))
    parser.add_argument(
        "--tree",
        metavar="REF",
        help="serve a committed tree (e.g. HEAD) exported with git archive, not the working tree",
    )
    parser.add_argument(
        "--nice", type=int, default=0, help="niceness of everything the run starts (root: -10)"
    )
    args = parser.parse_args()
    configs = FULL if args.full else STANDARD
    if args.quick:
        configs = STANDARD[:1]
    if args.only:
        wanted = set(args.only.split(","))
        configs = [c for c in FULL + STANDARD if c.name in wanted]
        configs = list({c.name: c for c in configs}.values())
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    servers.NICE = args.nice
    if args.tree:
        servers.SOURCE = servers.export_tree(args.tree)
    results = run_configs(configs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = report.markdown(results)
    out.with_suffix(".md").write_text(markdown)
    out.with_suffix(".rst").write_text(report.rst(results))
    print(markdown)
    print(f"written: {out.with_suffix('.json')}, .md and .rst")


if __name__ == "__main__":
    main()
