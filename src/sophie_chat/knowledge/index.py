"""The portable search engine: BM25 over an in-process inverted index of ``search_text``.

The index holds only stems and numbers (a few MB for 10,000 entries) and is built on first
use. It stays fresh two ways: saving or deleting an entry bumps a version in Django's cache
(seen at once by every process sharing that cache, e.g. Redis, and by this process always),
and every ``RECHECK_SECONDS`` one query compares the table's row count and latest
``updated_at`` with the index's, which catches writes that skip the signals.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
import uuid
from collections import defaultdict
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Max

from sophie_chat.knowledge import text
from sophie_chat.logging import get_logger
from sophie_chat.models import KnowledgeBaseEntry

logger = get_logger(__name__)

# Weight of a term found in the title, the keywords and the content.
FIELD_WEIGHTS = (3.0, 2.5, 1.0)
K1 = 1.2
B = 0.5
# Stems that Snowball leaves apart ("limpar" -> limp, "limpeza" -> limpez) still meet when the
# question's stem is a prefix of the entry's; such a match counts less than an exact one.
PREFIX_MIN = 4
PREFIX_FACTOR = 0.5
RECHECK_SECONDS = 30.0
VERSION_KEY = "sophie_chat:kb_index_version"


class _Partition:
    """The entries of one language: term -> (doc numbers, BM25 term weights)."""

    def __init__(self, docs: list[tuple[int, str, str, dict[str, float]]]) -> None:
        self.pks = [d[0] for d in docs]
        self.categories = [d[1] for d in docs]
        self.audiences = [d[2] for d in docs]
        lengths = [sum(d[3].values()) for d in docs]
        avg = (sum(lengths) / len(lengths)) if lengths else 1.0
        postings: dict[str, tuple[list[int], list[float]]] = {}
        for n, (_pk, _cat, _aud, freqs) in enumerate(docs):
            # The length normalisation is per document: computed once here, not per search.
            norm = K1 * (1 - B + B * lengths[n] / avg)
            for term, tf in freqs.items():
                ns, weights = postings.setdefault(term, ([], []))
                ns.append(n)
                weights.append(tf * (K1 + 1) / (tf + norm))
        self.postings = postings
        self.vocabulary = sorted(postings)

    def _idf(self, df: int) -> float:
        return math.log(1 + (len(self.pks) - df + 0.5) / (df + 0.5))

    def _variants(self, term: str) -> list[tuple[str, float]]:
        """The term itself, and longer terms it is a prefix of ("limp" -> "limpez")."""
        variants = [(term, 1.0)] if term in self.postings else []
        if len(term) >= PREFIX_MIN:
            start = bisect.bisect_right(self.vocabulary, term)
            for other in self.vocabulary[start : start + 20]:
                if not other.startswith(term):
                    break
                variants.append((other, PREFIX_FACTOR))
        return variants

    def score(
        self, terms: list[str], categories: set[str] | None, audience: str | None
    ) -> dict[int, float]:
        scores: dict[int, float] = defaultdict(float)
        for term in dict.fromkeys(terms):
            variants = self._variants(term)
            if len(variants) == 1:
                ns, weights = self.postings[variants[0][0]]
                factor = variants[0][1] * self._idf(len(ns))
                for n, w in zip(ns, weights, strict=True):
                    scores[n] += factor * w
                continue
            # A document scores once per query term, with its best variant.
            best: dict[int, float] = {}
            for variant, boost in variants:
                ns, weights = self.postings[variant]
                factor = boost * self._idf(len(ns))
                for n, w in zip(ns, weights, strict=True):
                    value = factor * w
                    if value > best.get(n, 0.0):
                        best[n] = value
            for n, value in best.items():
                scores[n] += value
        return {
            self.pks[n]: value
            for n, value in scores.items()
            if (audience is None or self.audiences[n] in ("", audience))
            and (categories is None or self.categories[n] in categories)
        }


class Index:
    def __init__(self, rows: list[tuple[Any, ...]], stamp: Any, version: Any) -> None:
        self.stamp = stamp
        self.version = version
        self.checked_at = time.monotonic()
        by_language: dict[str, list[tuple[int, str, str, dict[str, float]]]] = defaultdict(list)
        for pk, lang, category, audience, search_text in rows:
            freqs: dict[str, float] = defaultdict(float)
            fields = text.parse_search_text(search_text)
            for weight, field_terms in zip(FIELD_WEIGHTS, fields, strict=True):
                for term in field_terms:
                    freqs[term] += weight
            by_language[text.primary_language(lang)].append((pk, category, audience, freqs))
        self.partitions = {lang: _Partition(docs) for lang, docs in by_language.items()}

    def score(
        self, terms: list[str], *, lang: str, categories: set[str] | None, audience: str | None
    ) -> dict[int, float]:
        partition = self.partitions.get(lang)
        return partition.score(terms, categories, audience) if partition else {}


_lock = threading.Lock()
_index: Index | None = None


def cached_version() -> Any:
    """The knowledge base version in the cache (``None`` when unset or unavailable)."""
    try:
        return cache.get(VERSION_KEY)
    except Exception as exc:  # a cache server that is down must not stop the search
        logger.warning("kb_index_version_unavailable", error=type(exc).__name__)
        return None


def bump_version() -> None:
    """Tell every process sharing the cache that the knowledge base changed."""
    global _index
    _index = None
    try:
        cache.set(VERSION_KEY, uuid.uuid4().hex, None)
    except Exception as exc:
        logger.warning("kb_index_version_unavailable", error=type(exc).__name__)


def _stamp() -> tuple[int, Any]:
    agg = KnowledgeBaseEntry.objects.aggregate(n=Count("pk"), latest=Max("updated_at"))
    return agg["n"], agg["latest"]


def _build(stamp: Any, version: Any) -> Index:
    rows = list(
        KnowledgeBaseEntry.objects.filter(is_active=True).values_list(
            "pk", "language", "category", "audience", "search_text"
        )
    )
    missing = [r[0] for r in rows if not r[4]]
    if missing:
        # Rows written by bulk_create or update() skip the signal: compute them on the fly.
        computed = {
            pk: text.build_search_text(t, k, c, lang)
            for pk, t, k, c, lang in KnowledgeBaseEntry.objects.filter(pk__in=missing).values_list(
                "pk", "title", "keywords", "content", "language"
            )
        }
        rows = [(*r[:4], r[4] or computed.get(r[0], "")) for r in rows]
    return Index(rows, stamp, version)


def get_index() -> Index:
    """This process's index, rebuilt when the knowledge base changed."""
    global _index
    version = cached_version()
    index = _index
    if (
        index is not None
        and index.version == version
        and time.monotonic() - index.checked_at < RECHECK_SECONDS
    ):
        return index
    with _lock:
        stamp = _stamp()
        if _index is not None and _index.stamp == stamp and _index.version == version:
            _index.checked_at = time.monotonic()
            return _index
        _index = _build(stamp, version)
        return _index
