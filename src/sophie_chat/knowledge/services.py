"""Service information (price, availability) from the site, through a pluggable provider.

The package never imports the site's models. A site that wants Sophie to quote real services
writes a :class:`ServiceInfoProvider` and names it in ``CHAT_CONFIG["SERVICE_INFO_PROVIDER"]``::

    # marketplace/chat.py
    from sophie_chat.knowledge.services import ServiceInfo, ServiceInfoProvider

    class MarketplaceServices(ServiceInfoProvider):
        def search(self, query, *, language, limit=3):
            return [self.for_object(s) for s in Service.objects.search(query)[:limit]]

        def for_object(self, obj):
            return ServiceInfo(title=obj.name, price="R$ 150,00", price_value=obj.price, ...)

The setting may name a class (instantiated once, without arguments), an instance or a module
with ``search``/``for_object`` functions. Without a provider, service questions are answered
from knowledge base entries of category ``service``.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from django.utils.module_loading import import_string

from sophie_chat.conf import get_config
from sophie_chat.logging import get_logger

logger = get_logger(__name__)


@dataclass
class ServiceInfo:
    """What the assistant may say about one service.

    ``price`` is the display string the site wants users to see ("a partir de R$ 150,00");
    ``price_value`` the number behind it, when there is one.
    """

    title: str
    description: str = ""
    price: str = ""
    price_value: Decimal | None = None
    currency: str = "BRL"
    price_unit: str = ""  # "por diária", "per hour", ...
    availability: str = ""  # "Disponível hoje", "3 profissionais na sua região", ...
    url: str = ""
    category: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (``price_value`` as a string)."""
        data = asdict(self)
        data["price_value"] = None if self.price_value is None else str(self.price_value)
        return data

    def as_text(self) -> str:
        """One compact paragraph for a prompt or an offline answer."""
        parts = [self.title]
        if self.price:
            parts.append(f"{self.price} {self.price_unit}".strip())
        if self.availability:
            parts.append(self.availability)
        text = " | ".join(parts)
        if self.description:
            text += f"\n{self.description}"
        return text


@runtime_checkable
class ServiceInfoProviderProtocol(Protocol):
    def search(self, query: str, *, language: str, limit: int = 3) -> list[ServiceInfo]: ...

    def for_object(self, obj: Any) -> ServiceInfo | None: ...


class ServiceInfoProvider:
    """Base class of service information providers. Override one or both methods.

    Both methods are called synchronously, from a worker thread (inside one
    ``database_sync_to_async`` unit of a chat turn), so they may use the ORM freely. They should
    be quick (a query or two) and must never return personal data of other users.
    """

    def search(self, query: str, *, language: str, limit: int = 3) -> list[ServiceInfo]:
        """Services matching a user's question, best first."""
        return []

    def for_object(self, obj: Any) -> ServiceInfo | None:
        """The information about one of the site's objects (a service, a listing...)."""
        return None


_cache_lock = threading.Lock()
_cached: dict[str, Any] = {}


def get_service_info_provider() -> ServiceInfoProviderProtocol | None:
    """The configured provider, or ``None`` when ``SERVICE_INFO_PROVIDER`` is unset."""
    path = get_config().get("SERVICE_INFO_PROVIDER")
    if not path:
        return None
    key = path if isinstance(path, str) else str(id(path))
    with _cache_lock:
        if key not in _cached:
            target = import_string(path) if isinstance(path, str) else path
            # A class is instantiated once; an instance or a module is used as it is.
            _cached[key] = target() if isinstance(target, type) else target
        return _cached[key]


def _from_knowledge_base(query: str, language: str, limit: int) -> list[ServiceInfo]:
    from sophie_chat.knowledge.search import KnowledgeBase

    results = KnowledgeBase().search(query, category="service", language=language, limit=limit)
    # "quanto custa um encanador?" is about plumbers, not every service whose text says "custa".
    best = results[0].score if results else 0.0
    return [entry_to_service_info(r.entry) for r in results if r.score >= best * 0.5]


def entry_to_service_info(entry: Any) -> ServiceInfo:
    """A knowledge base entry of category ``service`` seen as :class:`ServiceInfo`."""
    return ServiceInfo(
        title=entry.title,
        description=entry.content,
        url=entry.url,
        category=entry.category,
        extra={"slug": entry.slug},
    )


def _linked_entries(obj: Any) -> list[ServiceInfo]:
    from django.contrib.contenttypes.models import ContentType

    from sophie_chat.models import KnowledgeBaseEntry

    ct = ContentType.objects.get_for_model(type(obj))
    entries = KnowledgeBaseEntry.objects.filter(
        content_type=ct, object_id=str(obj.pk), is_active=True
    )[:1]
    return [entry_to_service_info(e) for e in entries]


def get_service_info(
    query_or_obj: Any, *, language: str | None = None, limit: int = 3
) -> list[ServiceInfo]:
    """Service information for a question (``str``) or one of the site's objects.

    Asks the configured provider first; falls back to knowledge base entries (of category
    ``service`` for a question, linked to the object for an object). A failing provider is logged
    and skipped: a turn never breaks because the site's service lookup did.
    """
    language = language or get_config()["DEFAULT_LANGUAGE"]
    provider = get_service_info_provider()
    if provider is not None:
        try:
            if isinstance(query_or_obj, str):
                found = list(provider.search(query_or_obj, language=language, limit=limit))
            else:
                one = provider.for_object(query_or_obj)
                found = [one] if one is not None else []
        except Exception as exc:
            logger.warning("service_info_provider_failed", error=type(exc).__name__)
            found = []
        if found:
            return found[:limit]
    if isinstance(query_or_obj, str):
        return _from_knowledge_base(query_or_obj, language, limit)
    if getattr(query_or_obj, "pk", None) is None:
        return []
    return _linked_entries(query_or_obj)
