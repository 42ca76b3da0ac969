"""The example's settings and their environment switches, read in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# Points the SQLite file elsewhere before Django reads the settings, then reports what it got.
PROBE = """
import json, sys
import example_project.settings as s
s.DATABASES["default"]["NAME"] = sys.argv[1]
import django
django.setup()
from django.conf import settings
from django.db import connection
out = {
    "debug": settings.DEBUG,
    "engine": settings.DATABASES["default"]["ENGINE"],
    "pool": settings.DATABASES["default"].get("OPTIONS", {}).get("pool"),
    "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "layer_prefix": settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix"),
    "cache": settings.CACHES["default"]["BACKEND"],
    "has_key": "OPENAI_API_KEY" in settings.CHAT_CONFIG,
}
if out["engine"].endswith("sqlite3"):
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        out["journal_mode"] = cursor.fetchone()[0]
        cursor.execute("PRAGMA synchronous")
        out["synchronous"] = cursor.fetchone()[0]
    out["transaction_mode"] = connection.transaction_mode
print(json.dumps(out))
"""


def _probe(tmp_path: Path, **env: str) -> dict[str, Any]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "OPENAI_API_KEY"}
    }
    clean.update(
        PYTHONPATH=os.pathsep.join([str(ROOT / "example_project"), str(ROOT / "src")]),
        DJANGO_SETTINGS_MODULE="example_project.settings",
        **env,
    )
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "demo.sqlite3")],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_defaults_need_no_service(tmp_path: Path) -> None:
    got = _probe(tmp_path)
    assert got["debug"] is True
    assert got["engine"] == "django.db.backends.sqlite3"
    # WAL and synchronous=NORMAL (1) on every connection; writers take the lock up front.
    assert got["journal_mode"] == "wal"
    assert got["synchronous"] == 1
    assert got["transaction_mode"] == "IMMEDIATE"
    assert got["layer"] == "channels.layers.InMemoryChannelLayer"
    assert got["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert got["has_key"] is False  # the package reads OPENAI_API_KEY itself


def test_database_and_redis_urls_switch_backends(tmp_path: Path) -> None:
    got = _probe(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/sophie_example",
        REDIS_URL="redis://127.0.0.1:6379/9",
        DEBUG="0",
        SECRET_KEY="test-only",
    )
    assert got["debug"] is False
    assert got["engine"] == "django.db.backends.postgresql"
    assert got["pool"] == {"min_size": 2, "max_size": 20}
    assert got["layer"] == "channels_redis.core.RedisChannelLayer"
    assert got["layer_prefix"] == "sophie-example"
    assert got["cache"] == "django.core.cache.backends.redis.RedisCache"
