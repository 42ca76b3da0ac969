"""Knowledge base search speed over a generated 5,000-entry knowledge base.

Run from the repository root::

    .venv/bin/python benchmarks/kb_search.py                      # SQLite (a temporary file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python benchmarks/kb_search.py

It creates a fresh database (``sophie_kb_bench`` on PostgreSQL, dropped at the end), writes
the entries, warms each engine up, then times the labelled questions of
tests/data/kb_questions.json (cycled) through ``KnowledgeBase.search`` and prints the median
and 95th percentile, queries included. Options: ``--entries N``, ``--searches N``,
``--seed N``, ``--uniform`` (worst case: every entry uses every word).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "src"), str(REPO)]


def configure(sqlite_path: str) -> None:
    import django
    from django.conf import settings

    url = os.environ.get("DATABASE_URL")
    if url:
        import dj_database_url

        database = dj_database_url.parse(url)
        # Its own database: never the test suite's test_<name>, which may be in use.
        database["TEST"] = {"NAME": "sophie_kb_bench"}
    else:
        database = {"ENGINE": "django.db.backends.sqlite3", "NAME": sqlite_path}
        database["TEST"] = {"NAME": sqlite_path}
    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "channels",
            "sophie_chat",
        ],
        DATABASES={"default": database},
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        CHAT_CONFIG={},
    )
    django.setup()


def topics() -> dict[str, list[list[str]]]:
    """The words of each entry of the test knowledge base, per language: one list per topic."""
    import yaml

    found: dict[str, list[list[str]]] = {"pt-br": [], "en": []}
    for path in sorted((REPO / "tests" / "data" / "kb").glob("*.yaml")):
        for item in yaml.safe_load(path.read_text("utf-8")):
            text = f"{item['title']} {item['content']} {' '.join(item.get('keywords', []))}"
            words = [w.strip(".,:;()\"'!?") for w in text.split()]
            found[item["language"]].append([w for w in words if len(w) > 2])
    return found


def generate(count: int, seed: int, uniform: bool) -> None:
    """Write ``count`` entries.

    By default each entry is about one topic of the test knowledge base (most of its words come
    from that topic, some from anywhere, a few are names of its own), as in a real knowledge
    base where a question's words appear in a fraction of the entries. ``uniform`` draws every
    word from the whole vocabulary: nearly every entry then matches every question, a worst
    case for an inverted index.
    """
    from sophie_chat.knowledge.loader import reindex
    from sophie_chat.models import KnowledgeBaseEntry

    rng = random.Random(seed)
    by_language = topics()
    pools = {lang: [w for t in ts for w in t] for lang, ts in by_language.items()}
    categories = KnowledgeBaseEntry.Category.values

    def words(lang: str, topic: list[str], k: int) -> list[str]:
        if uniform:
            return rng.choices(pools[lang], k=k)
        out = []
        for _ in range(k):
            roll = rng.random()
            if roll < 0.75:
                out.append(rng.choice(topic))
            elif roll < 0.9:
                out.append(rng.choice(pools[lang]))
            else:
                out.append(f"nome{rng.randint(0, 20000)}")
        return out

    entries = []
    for i in range(count):
        language = "en" if rng.random() < 0.2 else "pt-br"
        topic = rng.choice(by_language[language])
        entries.append(
            KnowledgeBaseEntry(
                slug=f"gen-{i}",
                language=language,
                category=rng.choice(categories),
                audience=rng.choice(["", "", "", "client", "provider"]),
                title=" ".join(words(language, topic, rng.randint(2, 6))).capitalize(),
                keywords=", ".join(words(language, topic, rng.randint(2, 6))),
                content=" ".join(words(language, topic, rng.randint(30, 150))) + ".",
                url=f"/ajuda/{i}/",
            )
        )
    KnowledgeBaseEntry.objects.bulk_create(entries, batch_size=500)
    reindex()


def measure(engine: str, searches: int) -> dict[str, float]:
    from sophie_chat.knowledge import search

    questions = json.loads((REPO / "tests" / "data" / "kb_questions.json").read_text("utf-8"))
    kb = search.KnowledgeBase(engine)
    search.invalidate()
    started = time.perf_counter()
    kb.search("aquecimento", language="pt-br")
    warmup_ms = (time.perf_counter() - started) * 1000
    times = []
    for i in range(searches):
        q = questions[i % len(questions)]
        started = time.perf_counter()
        kb.search(q["q"], language=q["language"], audience=q["audience"], limit=5)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "median": statistics.median(times),
        "p95": times[int(len(times) * 0.95) - 1],
        "max": times[-1],
        "first": warmup_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--searches", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--uniform", action="store_true", help="Worst case: every entry uses every word."
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        configure(str(Path(tmp) / "kb-bench.sqlite3"))
        from django.db import connection

        name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            started = time.perf_counter()
            generate(args.entries, args.seed, args.uniform)
            load_s = time.perf_counter() - started
            engines = ["postgres", "python"] if connection.vendor == "postgresql" else ["python"]
            print(
                f"{connection.vendor}: {args.entries} {'uniform' if args.uniform else 'topical'} "
                f"entries written and indexed in "
                f"{load_s:.1f} s; {args.searches} searches per engine"
            )
            for engine in engines:
                r = measure(engine, args.searches)
                print(
                    f"  {engine:8} median {r['median']:.2f} ms  p95 {r['p95']:.2f} ms  "
                    f"max {r['max']:.2f} ms  (first search, index build included: "
                    f"{r['first']:.0f} ms)"
                )
        finally:
            connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
