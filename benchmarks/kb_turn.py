"""Cost of one turn's knowledge lookup (``sophie_chat.ai.context.gather_sync``) on the demo site.

Run from the repository root::

    .venv/bin/python benchmarks/kb_turn.py                         # SQLite, local-memory cache
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python benchmarks/kb_turn.py                     # PostgreSQL, Redis cache

It builds the example marketplace (``load_demo``: services, their knowledge entries and the
site's YAML knowledge base) in a fresh database (``sophie_kb_turn_bench`` on PostgreSQL, dropped
at the end), runs every turn of :data:`TURNS` once to warm up, then times ``--calls`` calls of
``gather_sync`` (the turns cycled) and prints the median and 95th percentile in microseconds and
the SQL statements per call. ``--repo PATH`` measures another checkout's ``src/`` and
``example_project/`` (e.g. a ``git worktree`` of an older commit) with this script;
``--engine python`` sets ``KNOWLEDGE_SEARCH_ENGINE``.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# (text, page path, user type): the load benchmark's kinds of questions, from the demo's pages.
TURNS = [
    ("Quanto custa uma diarista?", "/servicos/", "anonymous"),
    ("Qual o preço de um eletricista?", "/servicos/eletricista-residencial/", "client"),
    ("Como faço para contratar um eletricista?", "/", "anonymous"),
    ("Quais são as formas de pagamento aceitas?", "/como-funciona/", "client"),
    ("Como cancelo um pedido?", "/minhas-contratacoes/", "client"),
    ("Como me cadastro como prestador de serviços?", "/seja-prestador/", "anonymous"),
    ("Vocês atendem pintura no meu bairro?", "/categorias/", "anonymous"),
    ("How much does a cleaner cost?", "/servicos/", "anonymous"),
]


def configure(repo: Path, sqlite_path: str, engine: str) -> None:
    sys.path[:0] = [str(repo / "src"), str(repo / "example_project")]
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "kb-turn-benchmark-only")
    import django
    from django.conf import settings

    from example_project import settings as site

    values = {k: getattr(site, k) for k in dir(site) if k.isupper()}
    database = values["DATABASES"]["default"]
    if database["ENGINE"].endswith("sqlite3"):
        database.update(NAME=sqlite_path, TEST={"NAME": sqlite_path})
    else:
        database["TEST"] = {"NAME": "sophie_kb_turn_bench"}
    if engine:
        values["CHAT_CONFIG"] = {**values["CHAT_CONFIG"], "KNOWLEDGE_SEARCH_ENGINE": engine}
    for cache in values["CACHES"].values():
        # Never clear a shared Redis database: keys of its own, left to expire (the knowledge
        # base version, which never expires, is deleted at the end).
        cache["KEY_PREFIX"] = "sophie-kb-turn-bench"
        cache["TIMEOUT"] = 600
    values["LOGGING"] = {"version": 1, "root": {"level": "ERROR"}}
    settings.configure(**values)
    django.setup()


class Counter:
    """Counts the statements every cursor of the default connection runs."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.n += 1
        return execute(sql, params, many, context)


def measure(calls: int) -> dict[str, float]:
    from django.db import connection

    from sophie_chat.ai.base import Turn
    from sophie_chat.ai.context import gather_sync

    turns = [
        Turn(session_id="bench", text=t, language="pt-br", user_type=u, page={"url": p})
        for t, p, u in TURNS
    ]
    counter = Counter()
    with connection.execute_wrapper(counter):
        for turn in turns:
            assert gather_sync(turn).entries, turn.text
        counter.n = 0
        times = []
        for i in range(calls):
            started = time.perf_counter()
            gather_sync(turns[i % len(turns)])
            times.append((time.perf_counter() - started) * 1e6)
    times.sort()
    return {
        "median": statistics.median(times),
        "p95": times[int(len(times) * 0.95) - 1],
        "queries": counter.n / calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--engine", default="", help="KNOWLEDGE_SEARCH_ENGINE (default: auto)")
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        configure(args.repo.resolve(), str(Path(tmp) / "kb-turn.sqlite3"), args.engine)
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection

        name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            call_command("load_demo", verbosity=0, stdout=io.StringIO())
            import sophie_chat
            from sophie_chat.knowledge.search import KnowledgeBase

            r = measure(args.calls)
            cache = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[1]
            print(
                f"{Path(sophie_chat.__file__).parent} on {connection.vendor}, cache {cache}, "
                f"engine {KnowledgeBase().engine}: {args.calls} calls of "
                f"gather_sync: median {r['median']:.0f} µs, p95 {r['p95']:.0f} µs, "
                f"{r['queries']:.2f} SQL statements per call"
            )
        finally:
            from django.core.cache import cache as default_cache

            default_cache.delete("sophie_chat:kb_index_version")
            connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
