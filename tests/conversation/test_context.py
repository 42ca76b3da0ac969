"""ContextManager: user type and profile facts, page context, and the knowledge for a turn."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Group

from sophie_chat.ai.base import Turn
from sophie_chat.conversation import context
from sophie_chat.conversation.context import (
    ContextManager,
    build_knowledge_base_context,
    build_turn_context,
    default_user_type,
    get_navigation_context,
    get_user_context,
    get_user_type,
    sanitize_user_context,
)
from sophie_chat.knowledge import search
from sophie_chat.knowledge.loader import load
from sophie_chat.knowledge.services import ServiceInfo

KB_DIR = Path(__file__).resolve().parent.parent / "data" / "kb"


@pytest.fixture
def kb(db: None) -> None:
    search.invalidate()
    load([KB_DIR])


@pytest.fixture
def chat_config(settings: Any) -> Callable[..., None]:
    def update(**keys: Any) -> None:
        settings.CHAT_CONFIG = {**(getattr(settings, "CHAT_CONFIG", None) or {}), **keys}

    return update


# --- user type and profile ---------------------------------------------------------------


def test_default_user_type(user_factory: Callable[..., Any]) -> None:
    assert default_user_type(None) == "anonymous"
    assert default_user_type(AnonymousUser()) == "anonymous"
    assert default_user_type(user_factory(is_staff=True)) == "staff"
    assert default_user_type(user_factory()) == "client"
    provider = user_factory()
    provider.groups.add(Group.objects.create(name="Prestadores"))
    assert default_user_type(provider) == "provider"
    flagged = user_factory()
    flagged.is_provider = True
    assert default_user_type(flagged) == "provider"
    typed = user_factory()
    typed.user_type = "provider"
    assert default_user_type(typed) == "provider"
    typed.user_type = "superhero"  # not a type: ignored
    assert default_user_type(typed) == "client"


def resolve_all_providers(user: Any) -> str:
    return "provider"


def resolve_nonsense(user: Any) -> str:
    return "wizard"


def resolve_broken(user: Any) -> str:
    raise RuntimeError("site bug")


@pytest.mark.parametrize(
    ("resolver", "expected"),
    [
        (f"{__name__}.resolve_all_providers", "provider"),
        (f"{__name__}.resolve_nonsense", "client"),
        (f"{__name__}.resolve_broken", "client"),
    ],
)
def test_user_type_resolver(
    chat_config: Callable[..., None], user_factory: Callable[..., Any], resolver: str, expected: str
) -> None:
    chat_config(USER_TYPE_RESOLVER=resolver)
    assert get_user_type(user_factory()) == expected


def profile_with_secrets(user: Any) -> dict[str, Any]:
    return {
        "first_name": "Ana",
        "city": "Recife",
        "email": "ana@example.com",
        "Telefone": "(81) 99999-1234",
        "cpf": "123.456.789-09",
        "billing_address": "Rua A, 1",
        "password_hint": "cat",
        "notes": "write to me at ana@example.com",
        "orders": [{"service": "Diarista", "customer_cnpj": "12.345.678/0001-90"}],
        "completed_jobs": 12,
    }


def test_user_context_strips_sensitive_keys_and_values(
    chat_config: Callable[..., None], user_factory: Callable[..., Any]
) -> None:
    chat_config(USER_CONTEXT_PROVIDER=f"{__name__}.profile_with_secrets")
    facts = get_user_context(user_factory())
    assert facts == {
        "first_name": "Ana",
        "city": "Recife",
        "orders": [{"service": "Diarista"}],
        "completed_jobs": 12,
    }
    assert get_user_context(AnonymousUser()) == {}


def test_user_context_without_or_with_a_broken_provider(
    chat_config: Callable[..., None], user_factory: Callable[..., Any]
) -> None:
    assert get_user_context(user_factory()) == {}
    chat_config(USER_CONTEXT_PROVIDER=f"{__name__}.resolve_broken")
    assert get_user_context(user_factory()) == {}


def test_sanitize_caps_sizes() -> None:
    clean = sanitize_user_context({"bio": "x" * 1000, **{f"k{i}": i for i in range(50)}})
    assert len(clean["bio"]) == 200
    assert len(clean) == 30


# --- page -----------------------------------------------------------------------------------


def test_navigation_context_is_normalised() -> None:
    nav = get_navigation_context(
        {
            "url": "https://loja.example.com/servicos/diarista/?email=ana@example.com#x",
            "title": "  Diarista \n | Marketplace " + "x" * 300,
            "referrer": "https://www.google.com/search?q=diarista+recife",
            "status": "200",
            "time_on_page_ms": 65_000,
        }
    )
    assert nav["url"] == "/servicos/diarista/"
    assert nav["title"].startswith("Diarista | Marketplace")
    assert len(nav["title"]) == 200
    assert nav["referrer"] == "www.google.com"
    assert nav["status"] == 200
    assert nav["time_on_page"] == 65
    assert nav["is_error_page"] is False


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, "not_found"), (403, "forbidden"), (500, "server_error"), (418, "client_error")],
)
def test_navigation_context_error_pages(status: int, error: str) -> None:
    nav = get_navigation_context({"url": "/x/", "status": status, "referrer": "/servicos/"})
    assert nav["is_error_page"] is True
    assert nav["error"] == error
    assert nav["referrer"] == "/servicos/"


def test_navigation_context_survives_junk() -> None:
    assert get_navigation_context(None)["url"] == ""
    nav = get_navigation_context({"url": 5, "status": "abc", "title": ["x"], "time_on_page": -3})
    assert (nav["url"], nav["status"], nav["title"], nav["time_on_page"]) == ("", None, "", 0)
    assert get_navigation_context({"status": 999})["status"] is None


# --- knowledge for a question ---------------------------------------------------------------


def slugs(items: list[dict[str, Any]]) -> list[str]:
    return [i["slug"] for i in items]


def test_same_question_client_and_provider_get_their_own_role(kb: None) -> None:
    question = "como funciona o cancelamento?"
    client = build_knowledge_base_context(question, language="pt-br", user_type="client")
    provider = build_knowledge_base_context(question, language="pt-br", user_type="provider")
    assert slugs(client)[0] == "cancelar-servico"
    assert slugs(provider)[0] == "cancelamento-prestador"
    assert "cancelamento-prestador" not in slugs(client)
    assert "cancelar-servico" not in slugs(provider)
    client_pay = build_knowledge_base_context(
        "quando cai o pagamento?", language="pt-br", user_type="client"
    )
    provider_pay = build_knowledge_base_context(
        "quando cai o pagamento?", language="pt-br", user_type="provider"
    )
    assert "repasses-prestador" not in slugs(client_pay)
    assert "repasses-prestador" in slugs(provider_pay)[:2]
    assert "formas-de-pagamento" not in slugs(provider_pay)


def test_lost_visitor_on_a_404_page_gets_help_to_find_their_way(kb: None) -> None:
    page = {"url": "/servicos/nao-existe/antigo/", "status": 404, "title": "Página não encontrada"}
    items = build_knowledge_base_context(
        "onde estou?", language="pt-br", user_type="anonymous", page=page
    )
    first = items[0]
    assert first["category"] == "navigation"
    assert "404" in first["title"]
    # The way out: the home page and the main sections of the site.
    assert "- [Página inicial](</>)" in first["content"]
    assert "/servicos/" in first["content"]
    english = build_knowledge_base_context(
        "where am I?", language="en", user_type="anonymous", page=page
    )
    assert english[0]["title"].startswith("Page not found")


def test_page_guide_joins_the_search_results(kb: None) -> None:
    items = build_knowledge_base_context(
        "como pago?", language="pt-br", user_type="client", page={"url": "/checkout/"}
    )
    assert "pagina-checkout" in slugs(items)
    assert slugs(items)[0] != "pagina-checkout"  # the answer first, then the page's guide
    where = build_knowledge_base_context(
        "onde estou?", language="pt-br", user_type="client", page={"url": "/pedidos/"}
    )
    assert slugs(where)[0] == "pagina-meus-pedidos"


def test_budget_is_respected(kb: None) -> None:
    items = build_knowledge_base_context(
        "cancelar pedido reembolso pagamento",
        language="pt-br",
        user_type="client",
        budget_tokens=150,
    )
    used = sum(
        context.estimate_tokens(i["title"]) + context.estimate_tokens(i["content"]) for i in items
    )
    assert items
    assert used <= 150
    big = build_knowledge_base_context(
        "cancelar pedido reembolso pagamento", language="pt-br", user_type="client"
    )
    assert len(big) > len(items)


class FakeServices:
    def search(self, query: str, *, language: str, limit: int = 3) -> list[ServiceInfo]:
        return [
            ServiceInfo(
                title="Diarista Maria",
                price="R$ 160,00",
                price_unit="por diária",
                availability="Disponível amanhã",
                url="/servicos/diarista/maria/",
            )
        ]

    def for_object(self, obj: Any) -> ServiceInfo | None:
        return None


def test_service_inquiry_brings_service_details(kb: None, chat_config: Callable[..., None]) -> None:
    chat_config(SERVICE_INFO_PROVIDER=f"{__name__}.FakeServices")
    items = build_knowledge_base_context("quanto custa uma diarista?", language="pt-br")
    service = next(i for i in items if i["category"] == "service_info")
    assert "R$ 160,00 por diária" in service["content"]
    assert "Disponível amanhã" in service["content"]
    # Not a service question: no provider lookup.
    other = build_knowledge_base_context("esqueci minha senha", language="pt-br")
    assert all(i["category"] != "service_info" for i in other)


def test_service_inquiry_without_a_provider_uses_service_entries(kb: None) -> None:
    items = build_knowledge_base_context("qual o preço do eletricista?", language="pt-br")
    assert slugs(items)[0] == "servico-eletricista"
    # The service entry is not repeated as "service details", nor joined by unrelated services.
    assert len(slugs(items)) == len(set(slugs(items)))
    assert all(i["category"] != "service_info" for i in items)


def test_build_turn_context_in_one_go(
    kb: None, user_factory: Callable[..., Any], django_assert_max_num_queries: Any
) -> None:
    turn = Turn(
        session_id="s",
        text="quero cancelar meu pedido",
        language="pt-br",
        user_type="client",
        page={"url": "https://x.example/pedidos/7/", "status": 200},
        user_context={"first_name": "Ana", "email": "ana@example.com"},
    )
    search.KnowledgeBase().search("aquecer o índice")
    with django_assert_max_num_queries(6):
        ctx = build_turn_context(turn)
    assert ctx["user_type"] == "client"
    assert ctx["user_context"] == {"first_name": "Ana"}
    assert ctx["navigation"]["url"] == "/pedidos/7/"
    assert ctx["navigation_help"]["slug"] == "pagina-meus-pedidos"
    assert slugs(ctx["knowledge"])[0] == "cancelar-servico"
    assert ctx["is_service_inquiry"] is False
    assert ContextManager.build_turn_context is build_turn_context


def test_build_turn_context_reads_the_profile_when_given_a_user(
    kb: None, chat_config: Callable[..., None], user_factory: Callable[..., Any]
) -> None:
    chat_config(USER_CONTEXT_PROVIDER=f"{__name__}.profile_with_secrets")
    turn = SimpleNamespace(text="oi", language="pt-br", user_type="client", page={}, intent="")
    ctx = build_turn_context(turn, user=user_factory())
    assert ctx["user_context"]["city"] == "Recife"
    assert "email" not in ctx["user_context"]
