"""What the marketplace tells Sophie: user type, safe profile facts, service information."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.utils import translation

from marketplace import chat
from marketplace.chat import MarketplaceServices, user_context, user_type
from marketplace.models import Service
from tests.example.conftest import EXAMPLE_DIR


def test_user_type(market: dict[str, Any], user_factory: Any) -> None:
    assert user_type(AnonymousUser()) == "anonymous"
    assert user_type(None) == "anonymous"
    assert user_type(market["client"]) == "client"
    assert user_type(market["provider"]) == "provider"
    assert user_type(user_factory(username="boss", is_staff=True)) == "staff"
    # A user without a marketplace profile (e.g. made in the admin) is a client.
    assert user_type(user_factory(username="noprofile")) == "client"


def test_user_context_of_a_client_has_safe_facts_only(market: dict[str, Any]) -> None:
    context = user_context(market["client"])
    assert context == {
        "first_name": "Ana",
        "kind": "client",
        "city": "São Paulo",
        "bookings": 1,
        "open_bookings": 1,
    }
    text = repr(context)
    assert "91234" not in text  # phone
    assert "ana@example.com" not in text


def test_user_context_of_a_provider_lists_their_services(market: dict[str, Any]) -> None:
    context = user_context(market["provider"])
    assert context["kind"] == "provider"
    assert sorted(context["services"]) == [
        "Diarista: limpeza residencial completa",
        "Passadeira de roupas",
    ]
    assert context["open_requests"] == 1
    text = repr(context)
    assert "97777" not in text
    assert "carlos@example.com" not in text
    assert "phone" not in context
    assert "email" not in context


def test_user_context_of_visitors_is_empty(market: dict[str, Any]) -> None:
    assert user_context(AnonymousUser()) == {}


def test_service_search_answers_a_price_question(market: dict[str, Any]) -> None:
    found = MarketplaceServices().search("Quanto custa uma diarista?", language="pt-br")
    assert [info.title for info in found] == ["Diarista: limpeza residencial completa"]
    info = found[0]
    assert info.price == "R$ 180,00"
    assert info.price_unit == "por diária"
    assert info.availability == "Seg a sáb, 8h às 17h"
    assert info.url == "/servicos/diarista-residencial/"
    assert info.category == "Limpeza"
    assert "phone" not in repr(info)


def test_service_search_in_english(market: dict[str, Any]) -> None:
    found = MarketplaceServices().search("How much is a cleaner?", language="en")
    assert found[0].title == "Diarista: limpeza residencial completa"
    assert found[0].price_unit == "per day"


def test_service_search_without_a_service_word(market: dict[str, Any]) -> None:
    assert MarketplaceServices().search("olá, tudo bem?", language="pt-br") == []
    # A city alone matches nothing: it only narrows a match down.
    assert MarketplaceServices().search("Rio de Janeiro", language="pt-br") == []


def test_service_info_for_an_object(market: dict[str, Any]) -> None:
    provider = MarketplaceServices()
    with translation.override("pt-br"):
        info = provider.for_object(market["ironing"])
    assert info is not None
    assert info.price == "R$ 1.250,50"
    assert info.availability == "Sem agenda para novas contratações no momento"
    assert info.extra["available"] is False
    assert provider.for_object(market["category"]) is None


def test_the_package_uses_the_provider(market: dict[str, Any], settings: Any) -> None:
    from sophie_chat.knowledge.services import get_service_info

    settings.CHAT_CONFIG = {
        **settings.CHAT_CONFIG,
        "SERVICE_INFO_PROVIDER": "marketplace.chat.MarketplaceServices",
    }
    found = get_service_info("preciso de uma faxina", language="pt-br")
    assert found[0].url == "/servicos/diarista-residencial/"
    assert found[0].price == "R$ 180,00"


def titles(query: str, language: str = "pt-br") -> list[str]:
    return [info.title for info in MarketplaceServices().search(query, language=language)]


def test_warm_service_search_runs_no_query(
    market: dict[str, Any], django_assert_num_queries: Any
) -> None:
    titles("diarista")
    with django_assert_num_queries(0):
        found = MarketplaceServices().search("Quanto custa uma diarista?", language="pt-br")
        assert titles("passadeira de roupas") == ["Passadeira de roupas"]
    assert found[0].price == "R$ 180,00"
    assert found[0].extra["provider"] == "Carlos"


def test_a_service_saved_or_deleted_in_this_process_is_seen_at_once(
    market: dict[str, Any],
) -> None:
    assert titles("jardinagem") == []
    diarista = market["diarista"]
    diarista.tags += ", jardinagem"
    diarista.price = Decimal("200.00")
    diarista.save()
    found = MarketplaceServices().search("jardinagem", language="pt-br")
    assert [(i.title, i.price) for i in found] == [(diarista.title, "R$ 200,00")]
    diarista.delete()
    assert titles("jardinagem") == []


def test_bulk_updates_are_seen_within_the_snapshot_age(market: dict[str, Any]) -> None:
    assert titles("passadeira")
    # QuerySet.update() sends no signal: the snapshot shows the old availability until it ages.
    Service.objects.filter(pk=market["ironing"].pk).update(available=True, availability="Hoje")
    found = MarketplaceServices().search("passadeira", language="pt-br")
    assert found[0].availability != "Hoje"
    chat.catalogue().read_at -= chat.CATALOGUE_MAX_AGE
    found = MarketplaceServices().search("passadeira", language="pt-br")
    assert found[0].availability == "Hoje"


def test_what_a_search_returns_is_the_callers_own(market: dict[str, Any]) -> None:
    first = MarketplaceServices().search("diarista", language="pt-br")[0]
    first.title = "changed"
    first.extra["city"] = "changed"
    again = MarketplaceServices().search("diarista", language="pt-br")[0]
    assert again.title == "Diarista: limpeza residencial completa"
    assert again.extra["city"] == "São Paulo"


def test_a_turns_lookup_on_the_demo_runs_no_query_when_warm(
    market: dict[str, Any], settings: Any, django_assert_num_queries: Any
) -> None:
    """Search, the page's guide and the provider's service details, all from memory."""
    from sophie_chat.ai.base import Turn
    from sophie_chat.ai.context import gather_sync
    from sophie_chat.knowledge.loader import load

    load([EXAMPLE_DIR / "knowledge"])
    settings.CHAT_CONFIG = {
        **settings.CHAT_CONFIG,
        "SERVICE_INFO_PROVIDER": "marketplace.chat.MarketplaceServices",
    }
    turn = Turn(
        session_id="s",
        text="Quanto custa uma diarista?",
        language="pt-br",
        user_type="anonymous",
        page={"url": "http://testserver/servicos/diarista-residencial/"},
    )
    first = gather_sync(turn)
    with django_assert_num_queries(0):
        warm = gather_sync(turn)
    assert warm.entries == first.entries
    slugs = [e["slug"] for e in warm.entries]
    assert "pagina-servico" in slugs  # the guide of the page the visitor is on
    service = next(e for e in warm.entries if e["category"] == "service_info")
    assert "R$ 180,00" in service["content"]
    assert any(e["category"] not in ("navigation", "service_info") for e in warm.entries)
