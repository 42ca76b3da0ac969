"""Frequently asked questions: the knowledge base entries of category ``faq``."""

from __future__ import annotations

from sophie_chat.knowledge.text import primary_language
from sophie_chat.models import KnowledgeBaseEntry


def get_faq(
    language: str | None, audience: str | None = None, limit: int | None = None
) -> list[KnowledgeBaseEntry]:
    """Active FAQ entries in ``language`` (or, when it has none, in the other languages).

    ``audience`` keeps entries for everyone plus those for that audience; ``None`` keeps all.
    Ordered by title.
    """
    lang = primary_language(language)
    qs = KnowledgeBaseEntry.objects.filter(is_active=True, category="faq").order_by("title")
    if audience is not None:
        qs = qs.filter(audience__in=["", audience])
    entries = list(qs)
    mine = [e for e in entries if primary_language(e.language) == lang]
    chosen = mine or entries
    return chosen[:limit] if limit is not None else chosen
