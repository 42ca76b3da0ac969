"""Ranked search over the knowledge base.

Two engines behind one :class:`KnowledgeBase` API:

- the portable engine, the default on every database: BM25 ranking in Python over an
  in-process inverted index of the stored ``search_text`` that also holds the entries' fields,
  rebuilt when the table changes (see :mod:`.index`); a warm search runs no query;
- on PostgreSQL, when chosen (``"postgres"``), full-text search: a stored, weighted ``tsvector``
  column (title A, keywords B, content C) built with Portuguese or English configurations that
  remove accents (``unaccent``), with a GIN index; ranked by ``ts_rank`` weighted by each word's
  rarity (see :mod:`.pg`). Two queries a search, but nothing held in each process's memory.

Both are accent- and case-insensitive and stem Portuguese and English words. ``"auto"`` picks
the portable engine on PostgreSQL too: it ranks the labelled questions better (top-1 96.5 %
against 93.0 %) and a turn's lookup costs a fraction of the time, without a query
(docs/knowledge.rst has the figures).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection

from sophie_chat.conf import get_config
from sophie_chat.knowledge import index, pg, text
from sophie_chat.logging import get_logger
from sophie_chat.models import KnowledgeBaseEntry

logger = get_logger(__name__)

# Navigation guides are mostly served for the page the user is on; in a search they should not
# push aside the entry that answers the question.
CATEGORY_FACTORS = {"navigation": 0.8}
AUDIENCE_BOOST = 1.1
ENGINES = ("auto", "postgres", "python")


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


def _categories(category: str | Iterable[str] | None) -> set[str] | None:
    if category is None:
        return None
    return {category} if isinstance(category, str) else set(category)


# --- public API ----------------------------------------------------------------------------


class KnowledgeBase:
    """Search the active knowledge base entries.

    ``engine`` is ``"auto"`` (the portable engine), ``"python"`` or ``"postgres"`` (PostgreSQL
    full-text search; the portable engine on other databases); ``None`` reads
    ``KNOWLEDGE_SEARCH_ENGINE``.
    """

    def __init__(self, engine: str | None = None) -> None:
        if engine is None:
            engine = str(get_config().get("KNOWLEDGE_SEARCH_ENGINE") or "auto")
        if engine not in ENGINES or (engine == "postgres" and connection.vendor != "postgresql"):
            if engine != "auto":
                logger.warning("kb_search_engine_unavailable", engine=engine)
            engine = "auto"
        self.engine = "python" if engine == "auto" else engine

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
        # One index for the whole search: a rebuild in between cannot mix two versions.
        idx = index.get_index() if self.engine == "python" else None
        ranked = self._ranked(idx, query, lang, categories, audience, limit)
        if not ranked:
            for other in sorted(set(text.STOP_WORDS) - {lang}):
                ranked = self._ranked(idx, query, other, categories, audience, limit)
                if ranked:
                    break
        pks = [pk for pk, _ in ranked]
        # The portable engine holds the entries' fields: no query. PostgreSQL's fetches them.
        entries = idx.entries(pks) if idx is not None else KnowledgeBaseEntry.objects.in_bulk(pks)
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
        idx: index.Index | None,
        query: str,
        lang: str,
        categories: set[str] | None,
        audience: str | None,
        limit: int,
    ) -> list[tuple[int, float]]:
        # Fetch a few more than asked for: the boosts and factors may reorder the tail.
        fetch = limit + 3
        if idx is None:
            return pg.search(text.query_words(query), lang, categories, audience, fetch)
        scores = idx.score(
            text.terms(query, lang), lang=lang, categories=categories, audience=audience
        )
        return heapq.nsmallest(fetch, scores.items(), key=lambda item: (-item[1], item[0]))

    def search_entries(self, query: str, **kwargs: Any) -> list[KnowledgeBaseEntry]:
        """Like :meth:`search`, without the scores."""
        return [r.entry for r in self.search(query, **kwargs)]


def invalidate() -> None:
    """Forget the search index and retire the cached answers, here and in every process sharing
    the caches. Called on every save or delete of an entry; call it after writes that skip the
    signals (``QuerySet.update()``, ``bulk_create``)."""
    from sophie_chat.ai import cache as answers  # imported late: the AI layer imports this one

    index.bump_version()
    answers.bump_kb_version()
