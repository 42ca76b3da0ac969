"""What recording one AI call in the failure-alert window costs, by the window's size.

Run from the repository root::

    .venv/bin/python benchmarks/alert_window.py

Every answer records its AI call in :mod:`sophie_chat.analytics.alerts`, whose window holds the
last ``ALERT_WINDOW`` seconds (300 by default) of the worker's calls: about 30,000 for a worker
answering 100 messages a second. The script fills the window to each size with 2 % failures,
then times further calls (median of five rounds of 2,000) and prints microseconds per call.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "src"), str(REPO / "example_project"), str(REPO)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")


def main() -> None:
    import django

    django.setup()
    from sophie_chat.analytics import alerts

    now = [0.0]
    alerts.clock = lambda: now[0]
    window = alerts.FailureWindow()
    print("calls in the window | us per recorded call")
    for size in (1_000, 10_000, 30_000):
        window.reset()
        step = 300 / size
        for i in range(size):
            now[0] = i * step
            alerts.record_ai_call(ok=i % 50 != 0, kind="timeout", window=window)
        rounds = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(2000):
                now[0] += step
                alerts.record_ai_call(ok=True, window=window)
            rounds.append((time.perf_counter() - started) / 2000 * 1e6)
        print(f"{size:>19,} | {statistics.median(rounds):.1f}")


if __name__ == "__main__":
    main()
