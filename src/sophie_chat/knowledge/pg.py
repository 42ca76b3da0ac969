"""The PostgreSQL search engine: full-text search over the column migration 0002 adds.

``search_vector`` holds title (weight A), keywords (B) and content (C), parsed with the
``sophie_pt`` or ``sophie_en`` configuration (``unaccent`` then the Snowball stemmer) by a
trigger, and has a GIN index.

``ts_rank`` alone knows nothing of how rare a word is, so a search runs in two steps:

1. the document frequency of each word of the question, counted with the GIN index and cached
   (keyed by the knowledge base version, so a save makes them stale at once);
2. one query: the GIN index finds the entries holding the question's rarer words, the best
   ``CANDIDATES`` of them by plain ``ts_rank`` are kept, and those are ranked by the sum of
   each word's ``ts_rank`` weighted by its inverse document frequency.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from django.core.cache import cache
from django.db import connection

from sophie_chat.knowledge import index, text
from sophie_chat.knowledge.index import PREFIX_MIN
from sophie_chat.logging import get_logger
from sophie_chat.models import KnowledgeBaseEntry

logger = get_logger(__name__)

# ts_rank weights of D, C (content), B (keywords), A (title): the same 1 : 2.5 : 3 ratio as the
# portable engine's FIELD_WEIGHTS.
_WEIGHTS = "'{0.1, 0.33, 0.8, 1.0}'"
# ts_rank normalisation 2: divided by the document length (long entries do not win by size).
_NORM = 2
CANDIDATES = 200
# Words in more than this share of the entries do not select candidates (they still rank).
COMMON_SHARE = 0.1
DF_TTL = 300  # seconds: bounds staleness after writes that skip the signals

_RANK_SQL = """
WITH pool AS MATERIALIZED (
    SELECT id, search_vector || ''::tsvector AS vector FROM {table}
    WHERE is_active AND {language} AND {filters}
      AND search_vector @@ to_tsquery(%s::regconfig, %s)
    ORDER BY ts_rank({weights}, search_vector, to_tsquery(%s::regconfig, %s), {norm}) DESC
    LIMIT {candidates}
)
SELECT id, {rank} AS rank FROM pool ORDER BY rank DESC, id LIMIT %s
"""


def _language_filter(lang: str) -> tuple[str, list[Any]]:
    if lang == "pt":
        # Entries in languages the engine does not know are indexed as Portuguese.
        return "lower(language) NOT LIKE 'en%%'", []
    return "(lower(language) = %s OR lower(language) LIKE %s)", [lang, lang + "-%"]


def _frequencies(
    config: str, lang: str, terms: list[str], table: str
) -> tuple[int, dict[str, int]]:
    """The number of active entries in ``lang`` and the document frequency of each term."""
    version = index.cached_version()
    digest = hashlib.sha1(f"{version}:{config}".encode(), usedforsecurity=False).hexdigest()[:16]
    keys = {t: f"sophie_chat:kb_df:{digest}:{t}" for t in ["*", *terms]}
    try:
        found = cache.get_many(list(keys.values()))
    except Exception as exc:
        logger.warning("kb_df_cache_unavailable", error=type(exc).__name__)
        found = {}
    known = {t: found[k] for t, k in keys.items() if k in found}
    missing = [t for t in keys if t not in known]
    if missing:
        language, params = _language_filter(lang)
        # Only the quoted table name and constant clauses are formatted in; values are params.
        base = f"SELECT count(*) FROM {table} WHERE is_active AND {language}"  # noqa: S608
        selects: list[str] = []
        sql_params: list[Any] = []
        for t in missing:
            if t == "*":
                selects.append(f"({base})")
                sql_params += params
            else:
                selects.append(f"({base} AND search_vector @@ to_tsquery(%s::regconfig, %s))")
                sql_params += [*params, config, t]
        with connection.cursor() as cursor:
            cursor.execute("SELECT " + ", ".join(selects), sql_params)
            counts = cursor.fetchone()
        fresh = dict(zip(missing, counts, strict=True))
        known.update(fresh)
        try:
            cache.set_many({keys[t]: n for t, n in fresh.items()}, DF_TTL)
        except Exception as exc:
            logger.warning("kb_df_cache_unavailable", error=type(exc).__name__)
    return known.pop("*"), known


def search(
    words: list[str], lang: str, categories: set[str] | None, audience: str | None, limit: int
) -> list[tuple[int, float]]:
    """Entry ids and scores for the question's normalised ``words``, best first."""
    config = "sophie_en" if lang == "en" else "sophie_pt"
    # Prefix matching for longer words, as in the portable engine ("limpar" finds "limpeza").
    terms = list(
        dict.fromkeys(w + ":*" if len(text.stem(w, lang)) >= PREFIX_MIN else w for w in words[:12])
    )
    table = connection.ops.quote_name(KnowledgeBaseEntry._meta.db_table)
    total, df = _frequencies(config, lang, terms, table)
    terms = [t for t in terms if df.get(t)]
    if not terms:
        return []
    rare = [t for t in terms if df[t] <= max(COMMON_SHARE * total, CANDIDATES)] or terms
    idf = {t: math.log(1 + (total - df[t] + 0.5) / (df[t] + 0.5)) for t in terms}
    filters: list[str] = ["TRUE"]
    filter_params: list[Any] = []
    if categories is not None:
        filters.append("category = ANY(%s)")
        filter_params.append(sorted(categories))
    if audience is not None:
        filters.append("audience IN ('', %s)")
        filter_params.append(audience)
    language, lang_params = _language_filter(lang)
    rank = " + ".join(
        f"%s * ts_rank({_WEIGHTS}, vector, to_tsquery(%s::regconfig, %s), {_NORM})" for _ in terms
    )
    sql = _RANK_SQL.format(
        table=table,
        language=language,
        filters=" AND ".join(filters),
        weights=_WEIGHTS,
        norm=_NORM,
        candidates=CANDIDATES,
        rank=rank,
    )
    match = " | ".join(rare)
    params = [
        *lang_params,
        *filter_params,
        config,
        match,
        config,
        match,
        *[p for t in terms for p in (idf[t], config, t)],
        limit,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(pk, float(score)) for pk, score in cursor.fetchall()]
