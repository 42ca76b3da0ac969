"""Processes of a benchmark run: the test OpenAI server, the database, the ASGI server.

Everything listens on 127.0.0.1 on a free port. The ASGI server is pinned to core 1 with
``taskset`` when the machine has it (and two cores); the caller pins itself to core 0.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
# The tree the servers run from: this checkout, or an exported commit (run.py --tree REF), so a
# measurement does not pick up half-written files of a shared working tree.
SOURCE = REPO
# Niceness of the processes a run starts (and of the load generator): a negative value (root)
# keeps other work on a shared machine from taking the measured cores; 0 leaves things alone.
NICE = 0
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# Overridable, so that two checkouts on one machine never drop each other's benchmark database.
PG_DB = os.environ.get("BENCH_PG_DB", "sophie_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def can_pin() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so the ``finally`` blocks stop the servers."""
    import signal

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _prefix(cores: str) -> list[str]:
    """taskset in front of a command (its niceness is inherited from pin_self's)."""
    return ["taskset", "-c", cores] if can_pin() else []


def pin_self(core: int = 0) -> None:
    """Keep the load generator (and what it starts unpinned) off the server's core."""
    stop_on_sigterm()
    if NICE:
        os.nice(NICE - os.nice(0))
    if can_pin():
        os.sched_setaffinity(0, {core})


@contextmanager
def on_every_core(pids: list[int], when: bool = True) -> Iterator[None]:
    """While in the block, let ``pids`` (0: this process) and what they start run on every core;
    then put each back where it was.

    A run with several workers leaves the placement of everything to the kernel, as in
    production: pinned, the load generator and the test model crowd the core they share.
    """
    if not (when and can_pin()):
        yield
        return
    before = {pid: os.sched_getaffinity(pid) for pid in pids}
    for pid in pids:
        os.sched_setaffinity(pid, range(os.cpu_count() or 2))
    try:
        yield
    finally:
        for pid, cores in before.items():
            os.sched_setaffinity(pid, cores)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def base_env(db: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
            "PYTHONPATH": os.pathsep.join(
                [str(SOURCE / "src"), str(SOURCE), str(SOURCE / "example_project")]
            ),
            "BENCH_SQLITE_PATH": str(RESULTS / "bench.sqlite3"),
            "BENCH_DB": db,
            "BENCH_REDIS_URL": REDIS_URL,
            "BENCH_PG_URL": f"postgres://postgres@127.0.0.1:5432/{PG_DB}",
            "OPENAI_API_KEY": "sk-bench-dummy",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def start_openai(port: int, ttft: float, tps: float, content: str) -> subprocess.Popen[bytes]:
    """The AI engineer's test server, on core 0 beside the load generator, on uvloop if present."""
    code = (
        "import asyncio, sys\n"
        "try:\n    import uvloop; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())\n"
        "except ImportError:\n    pass\n"
        "from tests.openai_server import main; main(sys.argv[1:])\n"
    )
    args = [PYTHON, "-c", code, "--port", str(port), "--ttft", str(ttft), "--tps", str(tps)]
    args += ["--content", content]
    cmd = _prefix("0") + args
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = (RESULTS / "openai-server.log").open("ab")
    proc = subprocess.Popen(cmd, cwd=SOURCE, stdout=log, stderr=subprocess.STDOUT)
    _wait_port(port, proc)
    return proc


def prepare_db(db: str) -> float:
    """A fresh, migrated benchmark database; returns the seconds it took."""
    started = time.monotonic()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if db == "postgres":
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {PG_DB}")
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(str(RESULTS / "bench.sqlite3") + suffix).unlink(missing_ok=True)
    for command in (["migrate", "--noinput"], ["load_demo"]):
        # The demo's knowledge base and services: a turn's lookups search real rows.
        subprocess.run(
            [PYTHON, "-m", "django", *command, "-v", "0"],
            cwd=SOURCE,
            env=base_env(db),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return time.monotonic() - started


def flush_redis() -> None:
    """Empty the benchmark's own Redis database (cache, limits, layer), nobody else's."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def make_visitors(db: str, count: int) -> tuple[str, list[str]]:
    """Create ``count`` anonymous visitors' Django sessions; returns (cookie name, keys)."""
    out = subprocess.run(
        [PYTHON, "-m", "benchmarks.visitors", str(count)],
        cwd=SOURCE,
        env=base_env(db),
        check=True,
        capture_output=True,
    )
    data = json.loads(out.stdout)
    return data["cookie"], data["keys"]


@dataclass
class Server:
    """One or more ASGI worker processes, behind nginx when there are several."""

    kind: str
    port: int  # where clients connect: the worker's, or nginx's
    procs: list[subprocess.Popen[bytes]]
    worker_ports: list[int]
    proxy: subprocess.Popen[bytes] | None = None
    commands: list[list[str]] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]

    def stop(self) -> None:
        for proc in [*self.procs, *([self.proxy] if self.proxy else [])]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*self.procs, *([self.proxy] if self.proxy else [])]:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _worker_command(kind: str, port: int, deflate: bool) -> list[str]:
    if kind == "uvicorn":
        args = [PYTHON, "-m", "uvicorn", "benchmarks.asgi:application"]
        args += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--lifespan", "off"]
        args += ["--log-level", "warning", "--timeout-graceful-shutdown", "5"]
        args += ["--ws-per-message-deflate", "true" if deflate else "false"]
        args += ["--ws-max-size", "65536", "--backlog", "4096"]
        return args
    if kind == "daphne":
        args = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0"]
        return [*args, "--websocket_timeout", "-1", "benchmarks.asgi:application"]
    raise ValueError(kind)


def start_server(
    kind: str, db: str, openai_url: str, *, workers: int = 1, deflate: bool = False
) -> Server:
    """Start uvicorn or daphne on ``benchmarks.asgi:application``, the first worker on core 1.

    Several workers are separate processes on their own ports behind nginx configured from
    docs/deploy/nginx.conf, free to run wherever this process may (see :func:`on_every_core`).
    """
    env = base_env(db)
    env["OPENAI_BASE_URL"] = openai_url
    log = (RESULTS / f"server-{kind}.log").open("ab")
    procs, ports, commands = [], [], []
    for _ in range(workers):
        port = free_port()
        cmd = _worker_command(kind, port, deflate)
        # One worker: on the measured core. Several: where the caller may run (run.py lets it
        # run on every core for them, see on_every_core), wherever the kernel puts them.
        if workers == 1:
            cmd = _prefix("1") + cmd
        procs.append(
            subprocess.Popen(cmd, cwd=SOURCE, env=env, stdout=log, stderr=subprocess.STDOUT)
        )
        ports.append(port)
        commands.append(cmd)
    proxy = None
    port = ports[0]
    if workers > 1:
        port = free_port()
        proxy = start_nginx(port, ports)
    server = Server(kind, port, procs, ports, proxy, commands)
    for proc, worker_port in zip(procs, ports, strict=True):
        _wait_port(worker_port, proc)
    fetch_stats(server)  # the first request imports the whole site
    return server


def nginx_config(listen: int, upstreams: list[int]) -> str:
    """docs/deploy/nginx.conf turned into a loopback, plain-HTTP test configuration."""
    site = (SOURCE / "docs" / "deploy" / "nginx.conf").read_text()
    lines = []
    skip_redirect = False
    for line in site.splitlines():
        stripped = line.strip()
        if stripped.startswith("server 127.0.0.1:"):
            continue
        if stripped.startswith("upstream sophie_asgi"):
            lines.append(line)
            lines += [f"    server 127.0.0.1:{p};" for p in upstreams]
            continue
        if stripped == "listen 80;":
            skip_redirect = True  # the http -> https server block: dropped
        if skip_redirect:
            if stripped.startswith("return 301"):
                skip_redirect = False
                lines.pop()  # the block's "server {"
                while lines and lines[-1].strip() != "server {":
                    lines.pop()
                lines.pop()
                continue
            lines.append(line)
            continue
        if stripped.startswith(("listen 443", "listen [::]:443", "ssl_certificate")):
            if stripped.startswith("listen 443"):
                lines.append(f"    listen 127.0.0.1:{listen};")
            continue
        lines.append(line.replace("/srv/example/staticfiles/", f"{SOURCE}/example_project/static/"))
    body = "\n".join(lines)
    body = body.replace("\n}\n\n}", "\n}")  # the emptied redirect block's closing brace
    return (
        f"pid {RESULTS}/nginx.pid;\nerror_log {RESULTS}/nginx-error.log;\n"
        "events { worker_connections 4096; }\n"
        f"http {{\n    access_log off;\n{body}\n}}\n"
    )


def _nginx() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_available() -> bool:
    return Path(_nginx()).exists()


def start_nginx(listen: int, upstreams: list[int]) -> subprocess.Popen[bytes]:
    conf = RESULTS / "nginx.conf"
    conf.write_text(nginx_config(listen, upstreams))
    nginx = _nginx()
    if not nginx_available():
        raise SystemExit("--workers 2 and more run behind nginx: apt-get install -y nginx")
    subprocess.run([nginx, "-t", "-q", "-c", str(conf)], check=True)
    cmd = [*_prefix("0"), nginx, "-c", str(conf), "-g", "daemon off; worker_processes 1;"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(listen, proc)
    return proc


def fetch_stats(server: Server) -> dict[str, Any]:
    """The workers' /__bench__/stats, added up (each worker counts its own SQL)."""
    total: dict[str, Any] = {
        "queries": {},
        "sql_s": {},
        "db_units": {},
        "experiments": [],
        "gc": {},
    }
    for port in server.worker_ports:
        url = f"http://127.0.0.1:{port}/__bench__/stats"
        with urllib.request.urlopen(url, timeout=10) as response:
            stats = json.load(response)
        for key in ("queries", "sql_s", "db_units"):
            for name, value in stats[key].items():
                total[key][name] = total[key].get(name, 0) + value
        total["experiments"] = stats.get("experiments", [])
        for generation, figures in stats.get("gc", {}).items():
            mine = total["gc"].setdefault(generation, {"passes": 0, "total_ms": 0.0, "max_ms": 0.0})
            mine["passes"] += figures["passes"]
            mine["total_ms"] += figures["total_ms"]
            mine["max_ms"] = max(mine["max_ms"], figures["max_ms"])
    return total


def proc_usage(pids: list[int]) -> dict[str, float]:
    """CPU seconds (user + system), current and peak RSS (KiB), and seconds its threads waited
    for a CPU, summed over ``pids``."""
    cpu = rss = hwm = wait = 0.0
    for pid in pids:
        # schedstat: ns on a CPU, ns waiting on a run queue (other processes on the core).
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                wait += int((task / "schedstat").read_text().split()[1]) / 1e9
            except (OSError, IndexError, ValueError):
                continue
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu += (int(fields[11]) + int(fields[12])) / CLK_TCK
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm += int(line.split()[1])
    return {"cpu_s": cpu, "rss_kb": rss, "hwm_kb": hwm, "runqueue_wait_s": wait}


def self_cpu() -> float:
    times = os.times()
    return times.user + times.system


def start_profiler(pid: int, name: str, gil: bool = False) -> subprocess.Popen[bytes]:
    """py-spy (``uv pip install py-spy``) samples the server; folded stacks go to results/."""
    spy = shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy"))
    out = RESULTS / f"profile-{name}.txt"
    cmd = [spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw"]
    cmd += ["--nonblocking", "--output", str(out)] + (["--gil"] if gil else [])
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(proc: subprocess.Popen[bytes]) -> None:
    import signal

    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def export_tree(ref: str) -> Path:
    """``git archive`` a commit into results/tree-<sha>/ and serve from it (read-only on git)."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()
    target = RESULTS / f"tree-{sha}"
    for old in RESULTS.glob("tree-*"):
        if old != target:
            shutil.rmtree(old)  # exports of earlier commits
    if not target.exists():
        target.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", sha], cwd=REPO, check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target
