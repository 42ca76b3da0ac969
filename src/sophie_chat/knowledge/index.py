"""The portable search engine: BM25 over an in-process inverted index of ``search_text``.

The index holds the stems of every active entry and the fields a search result shows (all but
``search_text`` and the dates), so a warm search runs no query. It is built on first use and
stays fresh two ways: saving or deleting an entry bumps a version in Django's cache, and every
``RECHECK_SECONDS`` one query compares the table's row count and latest ``updated_at`` with the
index's, which catches writes that skip the signals (and processes with a private cache).

The version is read from the cache at most once per ``VERSION_MEMO_SECONDS`` per process: a busy
process does not pay a cache round trip per search. A save or delete in this process is seen at
once (the signal sets the memo too); one in another process sharing the cache, within that
second. :func:`per_version` keeps other derived data (the page guides) under the same rules.

Memory: about 28 MB held for 10,000 entries of 700 characters (the process grows by about
40 MB while building it); measured in docs/knowledge.rst.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
import uuid
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.core.cache import cache
from django.db.models import DEFERRED, Count, Max

from sophie_chat.knowledge import text
from sophie_chat.logging import get_logger
from sophie_chat.models import KnowledgeBaseEntry

logger = get_logger(__name__)

T = TypeVar("T")

# Weight of a term found in the title, the keywords and the content.
FIELD_WEIGHTS = (3.0, 2.5, 1.0)
K1 = 1.2
B = 0.5
# Stems that Snowball leaves apart ("limpar" -> limp, "limpeza" -> limpez) still meet when the
# question's stem is a prefix of the entry's; such a match counts less than an exact one.
PREFIX_MIN = 4
PREFIX_FACTOR = 0.5
RECHECK_SECONDS = 30.0
VERSION_MEMO_SECONDS = 1.0
VERSION_KEY = "sophie_chat:kb_index_version"

# The entry's columns, in model order. A search result's entry holds all but these, which are
# left deferred (loaded if read): search_text is as long as the content and only needed to build
# the postings; the dates cost a conversion per row at every rebuild.
_NOT_HELD = frozenset({"search_text", "created_at", "updated_at"})
_FIELDS = [f.attname for f in KnowledgeBaseEntry._meta.concrete_fields]
_HELD = [name for name in _FIELDS if name not in _NOT_HELD]
_AT = {name: i for i, name in enumerate(_HELD)}
# For each column, its position in a row of _HELD values, or None when deferred.
_LAYOUT = [_AT.get(name) for name in _FIELDS]


def _record(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row's values in the model's column order, as ``Model.from_db()`` takes them."""
    return tuple(DEFERRED if i is None else row[i] for i in _LAYOUT)


def _search_text(row: tuple[Any, ...]) -> str:
    """A row's stored search_text, or computed now for rows written by ``bulk_create`` or
    ``update()``, which skip the signal that stores it."""
    return row[-1] or text.build_search_text(
        row[_AT["title"]], row[_AT["keywords"]], row[_AT["content"]], row[_AT["language"]]
    )


class _Partition:
    """The entries of one language: term -> (doc numbers, BM25 term weights)."""

    def __init__(self, docs: list[tuple[int, str, str, dict[str, float]]]) -> None:
        self.pks = [d[0] for d in docs]
        self.categories = [d[1] for d in docs]
        self.audiences = [d[2] for d in docs]
        lengths = [sum(d[3].values()) for d in docs]
        avg = (sum(lengths) / len(lengths)) if lengths else 1.0
        # C arrays, not lists: a list holds a 32-byte float object per weight, an array 8 bytes
        # (the same double). This halves the index's memory for a slightly slower build.
        postings: dict[str, tuple[array[int], array[float]]] = {}
        for n, (_pk, _cat, _aud, freqs) in enumerate(docs):
            # The length normalisation is per document: computed once here, not per search.
            norm = K1 * (1 - B + B * lengths[n] / avg)
            for term, tf in freqs.items():
                posting = postings.get(term)
                if posting is None:
                    posting = postings[term] = (array("i"), array("d"))
                posting[0].append(n)
                posting[1].append(tf * (K1 + 1) / (tf + norm))
        self.postings = postings
        self.vocabulary = sorted(self.postings)

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
    """The postings of each language and the stored fields of each entry (by primary key)."""

    def __init__(self, rows: Iterable[tuple[Any, ...]], db: str) -> None:
        # Each row is the _HELD columns followed by search_text.
        self.db = db
        self.records: dict[int, tuple[Any, ...]] = {}
        by_language: dict[str, list[tuple[int, str, str, dict[str, float]]]] = defaultdict(list)
        for row in rows:
            pk, lang = row[_AT["id"]], row[_AT["language"]]
            self.records[pk] = _record(row)
            freqs: dict[str, float] = defaultdict(float)
            fields = text.parse_search_text(_search_text(row))
            for weight, field_terms in zip(FIELD_WEIGHTS, fields, strict=True):
                for term in field_terms:
                    freqs[term] += weight
            by_language[text.primary_language(lang)].append(
                (pk, row[_AT["category"]], row[_AT["audience"]], freqs)
            )
        self.partitions = {lang: _Partition(docs) for lang, docs in by_language.items()}

    def score(
        self, terms: list[str], *, lang: str, categories: set[str] | None, audience: str | None
    ) -> dict[int, float]:
        partition = self.partitions.get(lang)
        return partition.score(terms, categories, audience) if partition else {}

    def entries(self, pks: Iterable[int]) -> dict[int, KnowledgeBaseEntry]:
        """Entries as ``defer("search_text", "created_at", "updated_at")`` would load them, from
        memory.

        Each call makes new instances: a caller that changes one changes nobody else's.
        """
        return {
            pk: KnowledgeBaseEntry.from_db(self.db, _FIELDS, self.records[pk])
            for pk in pks
            if pk in self.records
        }


class _State:
    """What this process derived from the knowledge base as it was at one version."""

    def __init__(self, version: Any, stamp: Any) -> None:
        self.version = version
        self.stamp = stamp
        self.checked_at = _now()
        self.derived: dict[str, Any] = {}


def _now() -> float:
    return time.monotonic()


# Reentrant: a builder may itself read per_version() data.
_lock = threading.RLock()
_state: _State | None = None
_memo: tuple[float, Any] | None = None  # (when read, version)


def cached_version() -> Any:
    """The knowledge base version in the cache (``None`` when unset or unavailable).

    Read from the cache at most once per ``VERSION_MEMO_SECONDS``; an unavailable cache too is
    asked again only then, so a cache server that is down costs one timeout per second.
    """
    global _memo
    memo = _memo
    now = _now()
    if memo is not None and now - memo[0] < VERSION_MEMO_SECONDS:
        return memo[1]
    try:
        version = cache.get(VERSION_KEY)
    except Exception as exc:  # a cache server that is down must not stop the search
        logger.warning("kb_index_version_unavailable", error=type(exc).__name__)
        version = None
    _memo = (now, version)
    return version


def bump_version() -> None:
    """Tell every process sharing the cache that the knowledge base changed.

    This process forgets what it derived and takes the new version at once.
    """
    global _state, _memo
    version = uuid.uuid4().hex
    _state = None
    _memo = (_now(), version)
    try:
        cache.set(VERSION_KEY, version, None)
    except Exception as exc:
        logger.warning("kb_index_version_unavailable", error=type(exc).__name__)


def forget() -> None:
    """Drop this process's derived data and version memo (tests whose rollbacks skip signals)."""
    global _state, _memo
    _state = None
    _memo = None


def _stamp() -> tuple[int, Any]:
    agg = KnowledgeBaseEntry.objects.aggregate(n=Count("pk"), latest=Max("updated_at"))
    return agg["n"], agg["latest"]


def _current() -> _State:
    """The state for the knowledge base as it is now (one query every ``RECHECK_SECONDS``)."""
    global _state
    version = cached_version()
    state = _state
    if (
        state is not None
        and state.version == version
        and _now() - state.checked_at < RECHECK_SECONDS
    ):
        return state
    with _lock:
        stamp = _stamp()
        state = _state
        if state is not None and state.stamp == stamp and state.version == version:
            state.checked_at = _now()
            return state
        _state = _State(version, stamp)
        return _state


def per_version(name: str, build: Callable[[], T]) -> T:
    """``build()``'s result, kept until the knowledge base changes (as the index is).

    ``name`` tells the derived values apart; ``build`` runs its own queries.
    """
    state = _current()
    try:
        return state.derived[name]
    except KeyError:
        pass
    with _lock:
        if name not in state.derived:
            state.derived[name] = build()
        return state.derived[name]


def _build() -> Index:
    rows = KnowledgeBaseEntry.objects.filter(is_active=True).values_list(*_HELD, "search_text")
    return Index(rows, KnowledgeBaseEntry.objects.db)


def get_index() -> Index:
    """This process's index, rebuilt when the knowledge base changed."""
    return per_version("index", _build)
