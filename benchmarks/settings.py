"""Settings of the benchmark server: the example marketplace's settings, tuned by environment.

``benchmarks/run.py`` starts the ASGI server with ``DJANGO_SETTINGS_MODULE=benchmarks.settings``
and these variables (all optional):

- ``BENCH_DB``: ``postgres`` (Django's psycopg pool) or ``sqlite`` (WAL); default ``postgres``.
- ``BENCH_PG_URL``: PostgreSQL server URL without a database name part being used as-is
  (default ``postgres://postgres@127.0.0.1:5432/sophie_bench``; ``benchmarks/servers.py`` takes
  the database name from ``BENCH_PG_DB``, so two checkouts on one machine can each have theirs).
- ``BENCH_SQLITE_PATH``: the SQLite file (default ``benchmarks/results/bench.sqlite3``).
- ``BENCH_REDIS_URL``: Redis for the channel layer, cache and limits (default db 13).
- ``BENCH_RATE_LIMIT``: the chat's rate limit, raised so the load is not throttled.
- ``BENCH_HTTP_CLIENT``: the OpenAI SDK's transport (``OPENAI_HTTP_CLIENT``), default ``auto``.
- ``BENCH_PREPARE``: PostgreSQL's ``OPTIONS["prepare_threshold"]`` (prepared statements on the
  chat's async connections); unset, Django's default (none).
- ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``: the test OpenAI-compatible server and a dummy key.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The example project's packages (example_project, marketplace) live one folder down.
for _path in (str(REPO / "example_project"), str(REPO)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-secret")

from benchmarks.querycount import install as _install_query_counter  # noqa: E402
from example_project.settings import *  # noqa: E402,F403
from example_project.settings import CHAT_CONFIG as _SITE_CHAT_CONFIG  # noqa: E402
from example_project.settings import LOGGING as _SITE_LOGGING  # noqa: E402
from sophie_chat.layers import redis_channel_layer  # noqa: E402

# Django keeps every query in memory with DEBUG on: a load test would measure that leak.
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

_db = os.environ.get("BENCH_DB", "postgres")
if _db == "postgres":
    import dj_database_url

    DATABASES = {
        "default": dj_database_url.parse(
            os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/sophie_bench")
        )
    }
    # The pool is what keeps a turn's first query cheap (FACTS: +1.7 s p95 without it).
    DATABASES["default"]["OPTIONS"] = {"pool": {"min_size": 2, "max_size": 20}}
    if os.environ.get("BENCH_PREPARE"):
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = int(os.environ["BENCH_PREPARE"])
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif _db == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get(
                "BENCH_SQLITE_PATH", str(REPO / "benchmarks" / "results" / "bench.sqlite3")
            ),
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # One connection per thread for the life of the process, as in production.
            "CONN_MAX_AGE": None,
        }
    }
else:
    raise RuntimeError(f"BENCH_DB must be postgres or sqlite, not {_db!r}")

_redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ["REDIS_URL"] = _redis_url  # read by sophie_chat's get_config() for cache and limits
CHANNEL_LAYERS = {"default": redis_channel_layer(_redis_url, prefix="sophie-bench")}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": _redis_url,
        "KEY_PREFIX": "sophie-bench",
    }
}

CHAT_CONFIG = {
    **_SITE_CHAT_CONFIG,
    "RATE_LIMIT": os.environ.get("BENCH_RATE_LIMIT", "100000/m"),
    "OPENAI_MODEL": "bench-model",
    "OPENAI_MAX_RETRIES": 0,
    "REDIS_URL": _redis_url,
    # The SDK's HTTP transport: "auto" (aiohttp when installed), "aiohttp" or "httpx".
    "OPENAI_HTTP_CLIENT": os.environ.get("BENCH_HTTP_CLIENT", "auto"),
}
os.environ.setdefault("OPENAI_API_KEY", "sk-bench-dummy")

# Per-turn INFO logs stay on (production keeps them), written as JSON to the server's log file.
LOGGING = _SITE_LOGGING
LOGGING["loggers"]["django"]["level"] = "WARNING"

_install_query_counter()
