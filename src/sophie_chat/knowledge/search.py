"""Ranked search over the knowledge base.

Two engines behind one :class:`KnowledgeBase` API:

- on PostgreSQL, full-text search: a stored, weighted ``tsvector`` column (title A, keywords B,
  content C) built with Portuguese or English configurations that remove accents (``unaccent``),
  with a GIN index; ranked by ``ts_rank`` (see migration 0002);
- anywhere else, a portable BM25 ranking in Python over an in-process inverted index of the
  stored ``search_text``, rebuilt when the table changes (checked with one cheap query per
  search).

Both are accent- and case-insensitive and stem Portuguese and English words.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Count, Max, Q

from sophie_chat.conf import get_config
from sophie_chat.knowledge import text
from sophie_chat.models import KnowledgeBaseEntry

# Weight of a term found in the title, the keywords and the content (portable engine).
FIELD_WEIGHTS = (3.0, 2.5, 1.0)
_K1 = 1.2
_B = 0.5
# Stems that snowball leaves apart ("limpar" -> limp, "limpeza" -> limpez) still meet when the
# question's stem is a prefix of the entry's; such a match counts less than an exact one.
PREFIX_MIN = 4
PREFIX_FACTOR = 0.5
# Navigation guides are mostly served for the page the user is on; in a search they should not
# push aside the entry that answers the question.
CATEGORY_FACTORS = {"navigation": 0.8}
AUDIENCE_BOOST = 1.1


@dataclass
class SearchResult:
    """One hit: the entry and its score (higher is better; only comparable within one search)."""

    entry: KnowledgeBaseEntry
    score: float

    def as_context(self) -> dict[str, Any]:
        e = self.entry
        return {
            "slug": e.slug,
            "title": e.title,
            "content": e.content,
            "url": e.url,
            "category": e.category,
            "score": round(self.score, 4),
        }


def _audience_ok(entry_audience: str, audience: str | None) -> bool:
    return audience is None or entry_audience in ("", audience)


def _categories(category: str | Iterable[str] | None) -> set[str] | None:
    if category is None:
        return None
    return {category} if isinstance(category, str) else set(category)


# --- portable engine -----------------------------------------------------------------------


@dataclass
class _Doc:
    pk: int
    lang: str
    category: str
    audience: str
    length: float


class _Index:
    """Inverted index of the active entries: term -> [(doc number, weighted frequency)]."""

    def __init__(self, rows: list[tuple[Any, ...]], stamp: Any) -> None:
        self.stamp = stamp
        self.docs: list[_Doc] = []
        self.postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for pk, lang, category, audience, search_text in rows:
            freqs: dict[str, float] = defaultdict(float)
            for weight, field_terms in zip(
                FIELD_WEIGHTS, text.parse_search_text(search_text), strict=True
            ):
                for term in field_terms:
                    freqs[term] += weight
            n = len(self.docs)
            self.docs.append(
                _Doc(pk, text.primary_language(lang), category, audience, sum(freqs.values()))
            )
            for term, tf in freqs.items():
                self.postings[term].append((n, tf))
        self.avg_length = (sum(d.length for d in self.docs) / len(self.docs)) if self.docs else 1.0
        self.vocabulary = sorted(self.postings)

    def score(
        self,
        terms: list[str],
        *,
        lang: str,
        categories: set[str] | None,
        audience: str | None,
    ) -> dict[int, float]:
        scores: dict[int, float] = defaultdict(float)
        for term in dict.fromkeys(terms):
            # A document scores once per query term: with its best variant (exact or prefix).
            best: dict[int, float] = {}
            for variant, factor in self._variants(term):
                postings = self.postings[variant]
                idf = self._idf(len(postings))
                for n, tf in postings:
                    norm = _K1 * (1 - _B + _B * self.docs[n].length / self.avg_length)
                    value = factor * idf * tf * (_K1 + 1) / (tf + norm)
                    if value > best.get(n, 0.0):
                        best[n] = value
            for n, value in best.items():
                doc = self.docs[n]
                if doc.lang != lang or not _audience_ok(doc.audience, audience):
                    continue
                if categories is not None and doc.category not in categories:
                    continue
                scores[doc.pk] += value
        return scores

    def _idf(self, df: int) -> float:
        return math.log(1 + (len(self.docs) - df + 0.5) / (df + 0.5))

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


_lock = threading.Lock()
_index: _Index | None = None


def invalidate() -> None:
    """Forget this process's index (the signals call it on every save and delete)."""
    global _index
    _index = None


def _stamp() -> tuple[int, Any]:
    agg = KnowledgeBaseEntry.objects.aggregate(n=Count("pk"), latest=Max("updated_at"))
    return agg["n"], agg["latest"]


def _get_index() -> _Index:
    global _index
    # One cheap query per search tells other processes' saves apart from a stale index.
    stamp = _stamp()
    index = _index
    if index is not None and index.stamp == stamp:
        return index
    with _lock:
        if _index is not None and _index.stamp == stamp:
            return _index
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
                for pk, t, k, c, lang in KnowledgeBaseEntry.objects.filter(
                    pk__in=missing
                ).values_list("pk", "title", "keywords", "content", "language")
            }
            rows = [(*r[:4], r[4] or computed.get(r[0], "")) for r in rows]
        _index = _Index(rows, stamp)
        return _index


# --- PostgreSQL engine ---------------------------------------------------------------------

_PG_SQL = """
WITH matched AS (
    SELECT id, audience, category, search_vector FROM {table}
    WHERE is_active AND {language} AND search_vector @@ to_tsquery(%s::regconfig, %s)
), stats AS (
    SELECT (SELECT count(*) FROM {table} WHERE is_active AND {language}) AS total, {df}
    FROM matched
)
SELECT id, {rank} AS rank FROM matched, stats WHERE {where}
ORDER BY rank DESC, id
LIMIT %s
"""
# ts_rank weights of D, C (content), B (keywords), A (title): the same 1 : 2.5 : 3 ratio as the
# portable engine's FIELD_WEIGHTS.
_PG_WEIGHTS = "'{0.1, 0.33, 0.8, 1.0}'"
# ts_rank normalisation 2: divided by the document length (long entries do not win by size).
_PG_NORM = 2


def _pg_search(
    words: list[str], lang: str, categories: set[str] | None, audience: str | None, limit: int
) -> list[tuple[int, float]]:
    """Full-text search with an IDF weight per word (``ts_rank`` alone has none).

    One query: the GIN index finds the entries matching any word; the document frequency of
    each word is counted among them, and each word's ``ts_rank`` is weighted by its IDF.
    """
    config = "sophie_en" if lang == "en" else "sophie_pt"
    # Prefix matching for longer words, as in the portable engine ("limpar" finds "limpeza").
    terms = [w + ":*" if len(text.stem(w, lang)) >= PREFIX_MIN else w for w in words[:12]]
    if lang == "pt":
        # Entries in languages the engine does not know are indexed as Portuguese.
        language, lang_params = "lower(language) NOT LIKE 'en%%'", []
    else:
        language, lang_params = (
            "(lower(language) = %s OR lower(language) LIKE %s)",
            [
                lang,
                lang + "-%",
            ],
        )
    df = ", ".join(
        f"count(*) FILTER (WHERE search_vector @@ to_tsquery(%s::regconfig, %s)) AS df{i}"
        for i in range(len(terms))
    )
    rank = " + ".join(
        f"ln(1 + (total - df{i} + 0.5) / (df{i} + 0.5)) * "
        f"ts_rank({_PG_WEIGHTS}, search_vector, to_tsquery(%s::regconfig, %s), {_PG_NORM})"
        for i in range(len(terms))
    )
    where, where_params = ["TRUE"], []
    if categories is not None:
        where.append("category = ANY(%s)")
        where_params.append(sorted(categories))
    if audience is not None:
        where.append("audience IN ('', %s)")
        where_params.append(audience)
    sql = _PG_SQL.format(
        table=connection.ops.quote_name(KnowledgeBaseEntry._meta.db_table),
        language=language,
        df=df,
        rank=rank,
        where=" AND ".join(where),
    )
    per_term = [p for t in terms for p in (config, t)]
    params = [
        *lang_params,
        config,
        " | ".join(terms),
        *lang_params,
        *per_term,
        *per_term,
        *where_params,
        limit,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(pk, float(rank)) for pk, rank in cursor.fetchall()]


# --- public API ----------------------------------------------------------------------------


class KnowledgeBase:
    """Search the active knowledge base entries.

    ``engine`` is ``"auto"`` (PostgreSQL full-text search on PostgreSQL, the portable engine
    elsewhere), ``"postgres"`` or ``"python"``.
    """

    def __init__(self, engine: str = "auto") -> None:
        if engine == "auto":
            engine = "postgres" if connection.vendor == "postgresql" else "python"
        self.engine = engine

    def search(
        self,
        query: str,
        category: str | Iterable[str] | None = None,
        language: str | None = None,
        audience: str | None = None,
        limit: int = 5,
    ) -> list[SearchResult]:
        """Entries best matching ``query``, best first, with their scores.

        ``language`` defaults to ``DEFAULT_LANGUAGE``; when nothing matches in it, the other
        languages are searched. ``audience`` ("client", "provider"...) keeps entries meant for
        everyone plus those meant for that audience; ``None`` keeps all. Entries whose audience
        is exactly the one asked for get a small boost, so role-specific help comes first.
        """
        lang = text.primary_language(language or get_config()["DEFAULT_LANGUAGE"])
        categories = _categories(category)
        if limit <= 0 or not text.query_words(query):
            return []
        ranked = self._ranked(query, lang, categories, audience, limit)
        if not ranked:
            for other in sorted(set(text.STOP_WORDS) - {lang}):
                ranked = self._ranked(query, other, categories, audience, limit)
                if ranked:
                    break
        entries = KnowledgeBaseEntry.objects.in_bulk([pk for pk, _ in ranked])
        results = [SearchResult(entries[pk], score) for pk, score in ranked if pk in entries]
        for r in results:
            if categories is None or r.entry.category not in categories:
                r.score *= CATEGORY_FACTORS.get(r.entry.category, 1.0)
            if audience and r.entry.audience == audience:
                r.score *= AUDIENCE_BOOST
        results.sort(key=lambda r: -r.score)
        return results[:limit]

    def _ranked(
        self,
        query: str,
        lang: str,
        categories: set[str] | None,
        audience: str | None,
        limit: int,
    ) -> list[tuple[int, float]]:
        # Fetch a few more than asked for: the boosts and factors may reorder the tail.
        fetch = limit + 3
        if self.engine == "postgres":
            return _pg_search(text.query_words(query), lang, categories, audience, fetch)
        scores = _get_index().score(
            text.terms(query, lang), lang=lang, categories=categories, audience=audience
        )
        best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:fetch]
        return best

    def search_entries(self, query: str, **kwargs: Any) -> list[KnowledgeBaseEntry]:
        """Like :meth:`search`, without the scores."""
        return [r.entry for r in self.search(query, **kwargs)]


def active_entries(language: str | None) -> Q:
    """A filter for active entries in a language (primary subtag match: pt, pt-br, pt-PT)."""
    lang = text.primary_language(language)
    return Q(is_active=True) & (Q(language__iexact=lang) | Q(language__istartswith=lang + "-"))
