"""Keep ``KnowledgeBaseEntry.search_text`` and the in-process search index up to date."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save, pre_save

from sophie_chat.knowledge import search, text
from sophie_chat.models import KnowledgeBaseEntry


def update_search_text(sender: Any, instance: KnowledgeBaseEntry, **kwargs: Any) -> None:
    instance.search_text = text.build_search_text(
        instance.title, instance.keywords, instance.content, instance.language
    )


def forget_index(sender: Any, **kwargs: Any) -> None:
    search.invalidate()


def connect() -> None:
    """Called from ``SophieChatConfig.ready()``."""
    pre_save.connect(update_search_text, sender=KnowledgeBaseEntry, dispatch_uid="sophie_kb_text")
    post_save.connect(forget_index, sender=KnowledgeBaseEntry, dispatch_uid="sophie_kb_saved")
    post_delete.connect(forget_index, sender=KnowledgeBaseEntry, dispatch_uid="sophie_kb_deleted")
