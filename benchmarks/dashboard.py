"""Dashboard render time and CSV export memory on a realistic volume of chats.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sophie_dashboard_bench \\
        .venv/bin/python benchmarks/dashboard.py

Creates a throw-away database (``test_<name>``; SQLite when DATABASE_URL is unset), fills it with
1,000 sessions and 20,000 messages (``bulk_create``), renders the staff dashboard through Django's
test client several times, then grows the data to 100,000 messages and streams
``messages.csv`` through the view while tracemalloc watches the peak memory at checkpoints. A flat
peak (the same at 10,000 and at 100,000 rows) means the export runs in constant memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "src"), str(REPO / "example_project")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sophie_dashboard_bench")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from sophie_chat.analytics.demo import build_demo_chats  # noqa: E402
from sophie_chat.models import ChatMessage  # noqa: E402


def _mb(size: int) -> str:
    return f"{size / 1_048_576:.2f} MB"


def bench_dashboard(client: Client, runs: int) -> None:
    url = "/chat/dashboard/"
    client.get(url)  # warm-up: templates, URL resolver, database caches
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    median = statistics.median(times) * 1000
    print(
        f"dashboard render (last 30 days, {runs} runs): median {median:.0f} ms,"
        f" max {max(times) * 1000:.0f} ms, {len(queries)} queries, {len(response.content):,} bytes"
    )


def _export_query() -> dict[str, str]:
    today = timezone.localdate()
    return {"start": (today - dt.timedelta(days=60)).isoformat(), "end": today.isoformat()}


def bench_export_speed(client: Client) -> None:
    """Throughput without tracemalloc, which slows Python code down several times."""
    for kind in ("sessions", "messages"):
        started = time.perf_counter()
        response = client.get(f"/chat/export/{kind}.csv", _export_query())
        lines = sum(chunk.count(b"\r\n") for chunk in response.streaming_content) - 1
        elapsed = time.perf_counter() - started
        print(f"{kind}.csv: {lines:,} rows in {elapsed:.1f} s ({lines / elapsed:,.0f} rows/s)")


def bench_export(client: Client, checkpoints: list[int]) -> None:
    query = _export_query()
    tracemalloc.start()
    started = time.perf_counter()
    response = client.get("/chat/export/messages.csv", query)
    rows = -1  # the header line is not a row
    size = 0
    peaks: list[tuple[int, int]] = []
    targets = iter(checkpoints)
    target = next(targets, None)
    for chunk in response.streaming_content:
        size += len(chunk)
        rows += chunk.count(b"\r\n")
        if target is not None and rows >= target:
            peaks.append((rows, tracemalloc.get_traced_memory()[1]))
            tracemalloc.reset_peak()
            target = next(targets, None)
    elapsed = time.perf_counter() - started
    peaks.append((rows, tracemalloc.get_traced_memory()[1]))
    tracemalloc.stop()
    print(
        f"messages.csv export: {rows:,} rows, {size / 1_048_576:.1f} MB in {elapsed:.1f} s "
        f"({rows / elapsed:,.0f} rows/s)"
    )
    print("  peak traced memory per stretch (tracemalloc):")
    previous = 0
    for count, peak in peaks:
        print(f"    rows {previous:>7,} to {count:>7,}: {_mb(peak)}")
        previous = count


def _analyze() -> None:
    # After a bulk load, as autovacuum would soon do: the planner needs row estimates.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--messages-per-session", type=int, default=20)
    parser.add_argument("--export-rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keepdb", action="store_true", help="Keep the benchmark database.")
    args = parser.parse_args()

    print(f"database: {connection.vendor}")
    original_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=args.keepdb)
    try:
        ChatMessage.objects.all().delete()
        started = time.perf_counter()
        made = build_demo_chats(args.sessions, args.messages_per_session, days=30)
        print(
            f"fixture: {made['sessions']:,} sessions, {made['messages']:,} messages "
            f"in {time.perf_counter() - started:.1f} s (bulk_create)"
        )
        _analyze()
        staff = get_user_model().objects.create_user("bench", password="x", is_staff=True)
        client = Client()
        client.force_login(staff)
        bench_dashboard(client, args.runs)

        missing = args.export_rows - ChatMessage.objects.count()
        if missing > 0:
            started = time.perf_counter()
            more = build_demo_chats(
                missing // args.messages_per_session, args.messages_per_session, days=30, seed=11
            )
            print(
                f"fixture for the export: +{more['messages']:,} messages "
                f"in {time.perf_counter() - started:.1f} s"
            )
            _analyze()
        step = args.export_rows // 10
        bench_export_speed(client)
        bench_export(client, [step, args.export_rows // 4, args.export_rows // 2])
        bench_dashboard(client, args.runs)
    finally:
        if not args.keepdb:
            connection.creation.destroy_test_db(original_name, verbosity=0, keepdb=False)


if __name__ == "__main__":
    main()
