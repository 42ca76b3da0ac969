"""Benchmark-only what-ifs, switched on with ``BENCH_EXPERIMENTS=name,name``.

They measure a recommended change before anyone makes it in the package; each is applied in the
benchmark server only, before the site is imported. ``run.py`` records which were on.

- ``db_threads``: ``database_sync_to_async`` units run on a pool of 8 threads instead of all
  sharing Channels' one thread (each thread takes its own connection from the psycopg pool).
- ``switch_1ms``: ``sys.setswitchinterval(0.001)``: a thread back from the database waits at
  most 1 ms (not 5 ms) for the event loop thread to hand over the GIL.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

DB_THREADS = 8


def active() -> list[str]:
    return [name for name in os.environ.get("BENCH_EXPERIMENTS", "").split(",") if name]


def apply() -> list[str]:
    names = active()
    for name in names:
        globals()[f"_{name}"]()
    return names


def _db_threads() -> None:
    from channels.db import DatabaseSyncToAsync

    pool = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="bench-db")
    original = DatabaseSyncToAsync.__init__

    def __init__(self: Any, func: Any, thread_sensitive: bool = True, executor: Any = None) -> None:
        original(self, func, thread_sensitive=False, executor=pool)

    DatabaseSyncToAsync.__init__ = __init__  # type: ignore[method-assign]


def _switch_1ms() -> None:
    sys.setswitchinterval(0.001)
