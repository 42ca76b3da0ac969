"""The benchmark server: the example marketplace's ASGI application, plus two benchmark routes.

- ``ws://.../ws/baseline/``: :class:`benchmarks.baseline.consumer.BaselineConsumer`, the bare relay
  that Sophie's consumer is compared with, in the same process.
- ``GET /__bench__/stats``: this process's pid and the SQL it has run so far (by kind), so the
  load generator can compute queries per turn from two snapshots.

Serve it with ``uvicorn --app-dir . benchmarks.asgi:application`` from the repository root.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
for _path in (str(_REPO / "example_project"), str(_REPO)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")

import django  # noqa: E402

from benchmarks import experiments  # noqa: E402

EXPERIMENTS = experiments.apply()  # before the site is imported
# The site's asgi.py imports the chat's routing (and through it models) at module level; set
# Django up first so the benchmark never depends on that import order.
django.setup(set_prefix=False)

from benchmarks import querycount  # noqa: E402
from benchmarks.baseline.consumer import BaselineConsumer  # noqa: E402
from example_project.asgi import application as site_application  # noqa: E402

experiments.time_gc()

querycount.time_db_units()
querycount.count_async()

BASELINE_PATH = "/ws/baseline/"
STATS_PATH = "/__bench__/stats"
_baseline = BaselineConsumer.as_asgi()


async def _stats(scope: dict[str, Any], receive: Any, send: Any) -> None:
    stats = {
        "pid": os.getpid(),
        "queries": querycount.snapshot(),
        "sql_s": querycount.seconds(),
        "db_units": querycount.units(),
        "experiments": EXPERIMENTS,
        "gc": experiments.gc_figures(),
    }
    body = json.dumps(stats).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Route the two benchmark paths; everything else goes to the site unchanged."""
    if scope["type"] == "websocket" and scope["path"] == BASELINE_PATH:
        await _baseline(scope, receive, send)
    elif scope["type"] == "http" and scope["path"] == STATS_PATH:
        await _stats(scope, receive, send)
    else:
        await site_application(scope, receive, send)
