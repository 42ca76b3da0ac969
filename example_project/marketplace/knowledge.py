"""Sophie's knowledge base entries for the marketplace's services, kept in step with the catalogue.

Each service has one entry per language (slug ``servico-<service slug>``), linked to the service
through its content type. ``load_demo`` writes them for the demo, and the signals connected in
``MarketplaceConfig.ready()`` rewrite them whenever a service is saved or deleted, so a price
changed in the admin is the price Sophie quotes.
"""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType

from marketplace import demo_data
from marketplace.models import Service, format_brl
from sophie_chat.models import KnowledgeBaseEntry

LANGUAGES = ("pt-br", "en")

_UNITS = {
    "pt-br": {
        "hora": "por hora",
        "diaria": "por diária",
        "visita": "por visita",
        "projeto": "por projeto",
    },
    "en": {
        "hora": "per hour",
        "diaria": "per day",
        "visita": "per visit",
        "projeto": "per project",
    },
}
# English titles and descriptions of the demo's services. Other services (made in the admin)
# show their Portuguese text in the English entry: providers write their listings in Portuguese.
_ENGLISH = {row["slug"]: row for row in demo_data.SERVICES}


def entry_slug(service: Service) -> str:
    return f"servico-{service.slug}"


def sync_service(service: Service) -> None:
    """Create or update the service's entries (two queries per language at most)."""
    content_type = ContentType.objects.get_for_model(Service)
    row = _ENGLISH.get(service.slug, {})
    for language in LANGUAGES:
        KnowledgeBaseEntry.objects.update_or_create(
            slug=entry_slug(service),
            language=language,
            defaults={
                "category": KnowledgeBaseEntry.Category.SERVICE,
                "title": _title(service, row, language),
                "content": _content(service, row, language),
                "keywords": _keywords(service, language),
                "audience": "",
                "url": service.get_absolute_url(),
                "url_pattern": "",
                "content_type": content_type,
                "object_id": str(service.pk),
                "is_active": True,
            },
        )


def forget_service(service: Service) -> None:
    content_type = ContentType.objects.get_for_model(Service)
    KnowledgeBaseEntry.objects.filter(content_type=content_type, object_id=str(service.pk)).delete()


def on_service_saved(sender: Any, instance: Service, raw: bool = False, **kwargs: Any) -> None:
    if not raw:  # fixtures load objects half-built; load_demo syncs them afterwards
        sync_service(instance)


def on_service_deleted(sender: Any, instance: Service, **kwargs: Any) -> None:
    forget_service(instance)


def _keywords(service: Service, language: str) -> str:
    # Price words too: "quanto custa uma diarista?" must find the service, not only the general
    # entry about how prices work.
    price_words = "price, cost, how much" if language == "en" else "preço, valor, quanto custa"
    return f"{service.tags}, {service.category.name}, {service.city}, {price_words}".lstrip(", ")


def _title(service: Service, row: dict[str, Any], language: str) -> str:
    title = row.get("title_en", service.title) if language == "en" else service.title
    return f"{title} ({service.city})"


def _content(service: Service, row: dict[str, Any], language: str) -> str:
    price = f"{format_brl(service.price)} {_UNITS[language][service.price_unit]}"
    provider = service.provider.display_name
    url = service.get_absolute_url()
    if language == "en":
        status = (
            f"- Availability: {service.availability}"
            if service.available
            else "- Not taking bookings right now"
        )
        return (
            f"**{row.get('title_en', service.title)}** by {provider} in {service.city}, rated "
            f"{service.rating}/5.\n\n- Price: {price}\n{status}\n\n"
            f"{row.get('description_en', service.description)}\n\nTo book, open the service "
            f"page, pick a date and click **Book** (in Portuguese, **Contratar**): "
            f"[see the service]({url})."
        )
    status = (
        f"- Disponibilidade: {service.availability}"
        if service.available
        else "- Sem agenda para novas contratações no momento"
    )
    rating = str(service.rating).replace(".", ",")
    return (
        f"**{service.title}** com {provider} em {service.city}, avaliação {rating}/5.\n\n"
        f"- Preço: {price}\n{status}\n\n{service.description}\n\n"
        f"Para contratar, abra a página do serviço, escolha a data e clique em "
        f"**Contratar**: [ver o serviço]({url})."
    )
