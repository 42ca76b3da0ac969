"""Benchmark-only what-ifs, switched on with ``BENCH_EXPERIMENTS=name,name``.

They measure a change before anyone makes it in the package; each is applied in the benchmark
server only, before the site is imported. ``run.py`` records which were on.

- ``switch_1ms``: ``sys.setswitchinterval(0.001)``: a thread back from the database waits at
  most 1 ms (not 5 ms) for the event loop thread to hand over the GIL.

The server also times every garbage collection pass (the ``gc`` figures of ``/__bench__/stats``),
experiment or not: a long full pass stalls every socket of the worker at once.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from typing import Any


def active() -> list[str]:
    return [name for name in os.environ.get("BENCH_EXPERIMENTS", "").split(",") if name]


def apply() -> list[str]:
    names = active()
    for name in names:
        globals()[f"_{name}"]()
    return names


def _switch_1ms() -> None:
    sys.setswitchinterval(0.001)


_lock = threading.Lock()
_started: dict[int, float] = {}
_passes: dict[int, list[float]] = {0: [], 1: [], 2: []}


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    generation = int(info.get("generation", 0))
    now = time.perf_counter()
    if phase == "start":
        _started[generation] = now
        return
    began = _started.pop(generation, None)
    if began is not None:
        with _lock:
            _passes.setdefault(generation, []).append((now - began) * 1000)


def time_gc() -> None:
    """Time every garbage collection pass from now on."""
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


def gc_figures() -> dict[str, dict[str, float]]:
    """Per generation: passes so far, their total and longest milliseconds."""
    with _lock:
        return {
            str(generation): {
                "passes": len(times),
                "total_ms": round(sum(times), 1),
                "max_ms": round(max(times), 2) if times else 0.0,
            }
            for generation, times in _passes.items()
        }
