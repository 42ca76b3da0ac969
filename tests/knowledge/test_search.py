"""KnowledgeBase.search: normalisation, stemming, filters and index freshness, on both engines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from sophie_chat.knowledge import search, text
from sophie_chat.knowledge.loader import reindex
from sophie_chat.knowledge.search import KnowledgeBase
from sophie_chat.models import KnowledgeBaseEntry


def _engines() -> list[str]:
    return ["postgres", "python"] if connection.vendor == "postgresql" else ["python"]


@pytest.fixture
def entry(db: None) -> Callable[..., KnowledgeBaseEntry]:
    search.invalidate()

    def make(slug: str, title: str, content: str = "", **fields: Any) -> KnowledgeBaseEntry:
        return KnowledgeBaseEntry.objects.create(
            slug=slug, title=title, content=content or title, **fields
        )

    return make


def slugs(results: list[search.SearchResult]) -> list[str]:
    return [r.entry.slug for r in results]


def test_terms_are_unaccented_lowercase_stemmed_without_stop_words() -> None:
    assert text.terms("Diaristas") == text.terms("diarista") == ["diarist"]
    assert text.terms("cancelar") == text.terms("cancelamento")
    assert text.terms("Contratação") == text.terms("contratacao") == text.terms("contratar")
    assert text.terms("como eu faço para pagar com o cartão?") == text.terms("pagar cartao")
    assert text.terms("refunds", "en") == text.terms("refund", "en")
    assert text.primary_language("pt_BR") == text.primary_language("pt") == "pt"
    assert text.primary_language("en-us") == "en"


def test_search_text_is_computed_on_save(entry: Callable[..., KnowledgeBaseEntry]) -> None:
    e = entry("d", "Diaristas", "Limpeza da casa", keywords="faxina, faxineira")
    assert e.search_text.split("\n") == ["diarist", "faxin faxineir", "limpez cas"]
    e.title = "Passadeira"
    e.save()
    e.refresh_from_db()
    assert e.search_text.startswith("passadeir\n")


@pytest.mark.django_db
@pytest.mark.parametrize("engine", ["auto", *_engines()])
def test_accents_case_and_stems_match(engine: str, entry: Callable[..., Any]) -> None:
    entry("diarista", "Diarista", "Limpeza residencial, R$ 150 a diária.")
    entry("eletricista", "Eletricista", "Troca de tomadas e chuveiros.")
    entry("cancelar", "Cancelamento de serviço", "Cancele até 24 horas antes.")
    entry("servicos", "Serviços", "Todas as categorias.")
    kb = KnowledgeBase(engine)
    assert slugs(kb.search("diaristas"))[0] == "diarista"
    assert slugs(kb.search("ELETRICISTA"))[0] == "eletricista"
    assert slugs(kb.search("eletricista"))[0] == "eletricista"
    assert slugs(kb.search("quero cancelar"))[0] == "cancelar"
    assert slugs(kb.search("servico"))[0] == "servicos"
    assert slugs(kb.search("limpeza residencial")) == ["diarista"]
    # Only stop words: nothing to search for.
    assert kb.search("como é que eu faço isso?") == []
    assert kb.search("") == []
    assert kb.search("xyzzy plugh") == []


@pytest.mark.django_db
@pytest.mark.parametrize("engine", _engines())
def test_title_beats_content_and_scores_are_ranked(engine: str, entry: Callable[..., Any]) -> None:
    entry("mentions", "Dicas gerais", "Às vezes um encanador resolve; veja também outras dicas.")
    entry("plumber", "Encanador", "Vazamentos e desentupimento.")
    results = KnowledgeBase(engine).search("encanador")
    assert slugs(results) == ["plumber", "mentions"]
    assert results[0].score > results[1].score > 0
    assert results[0].as_context()["slug"] == "plumber"


@pytest.mark.django_db
@pytest.mark.parametrize("engine", _engines())
def test_filters(engine: str, entry: Callable[..., Any]) -> None:
    entry("pay-client", "Pagamento com Pix", audience="client", category="payment")
    entry("pay-provider", "Pagamento do prestador por Pix", audience="provider", category="payment")
    entry("pay-all", "Pix: como funciona o pagamento", category="faq")
    entry("pay-off", "Pagamento antigo por Pix", is_active=False)
    entry("pay-en", "Pix payments", language="en")
    kb = KnowledgeBase(engine)
    assert set(slugs(kb.search("pagamento pix", audience="client"))) == {"pay-client", "pay-all"}
    assert set(slugs(kb.search("pagamento pix", audience="provider"))) == {
        "pay-provider",
        "pay-all",
    }
    assert set(slugs(kb.search("pagamento pix"))) == {"pay-client", "pay-provider", "pay-all"}
    assert slugs(kb.search("pagamento pix", category="faq")) == ["pay-all"]
    assert set(slugs(kb.search("pix", category=["faq", "payment"], audience="client"))) == {
        "pay-client",
        "pay-all",
    }
    assert slugs(kb.search("pix payments", language="en")) == ["pay-en"]
    assert len(kb.search("pagamento pix", limit=1)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("engine", _engines())
def test_role_specific_entry_comes_first(engine: str, entry: Callable[..., Any]) -> None:
    entry("general", "Cancelamento", "Regras de cancelamento.")
    entry("provider", "Cancelamento", "Regras de cancelamento.", audience="provider")
    kb = KnowledgeBase(engine)
    assert slugs(kb.search("cancelamento", audience="provider")) == ["provider", "general"]


@pytest.mark.django_db
@pytest.mark.parametrize("engine", _engines())
def test_falls_back_to_the_other_language(engine: str, entry: Callable[..., Any]) -> None:
    entry("pt-only", "Encanador", "Vazamentos.", language="pt-br")
    entry("en-only", "Gift cards", "Buy a gift card.", language="en")
    kb = KnowledgeBase(engine)
    assert slugs(kb.search("encanador", language="en")) == ["pt-only"]
    assert slugs(kb.search("gift card", language="pt-br")) == ["en-only"]
    # The user's language wins when it has a match.
    entry("en-plumber", "Plumber (encanador)", "Leaks.", language="en")
    assert slugs(kb.search("encanador", language="en")) == ["en-plumber"]


@pytest.mark.django_db
@pytest.mark.parametrize("engine", _engines())
def test_changes_are_seen_at_once(engine: str, entry: Callable[..., Any]) -> None:
    kb = KnowledgeBase(engine)
    e = entry("garden", "Jardineiro", "Poda e grama.")
    assert slugs(kb.search("jardineiro")) == ["garden"]
    e.title, e.content = "Pintor", "Paredes."
    e.save()
    assert kb.search("jardineiro") == []
    assert slugs(kb.search("pintor")) == ["garden"]
    e.delete()
    assert kb.search("pintor") == []


@pytest.mark.django_db
@pytest.mark.parametrize("engine", _engines())
def test_bulk_created_entries_are_found_and_reindexed(engine: str) -> None:
    search.invalidate()
    KnowledgeBaseEntry.objects.bulk_create(
        [
            KnowledgeBaseEntry(slug=f"e{i}", title=f"Montador {i}", content="Móveis")
            for i in range(3)
        ]
        + [KnowledgeBaseEntry(slug="other", title="Pedreiro", content="Obras")]
    )
    assert KnowledgeBaseEntry.objects.filter(search_text="").count() == 4
    assert len(KnowledgeBase(engine).search("montador")) == 3
    assert reindex(batch_size=2) == 4
    assert not KnowledgeBaseEntry.objects.filter(search_text="").exists()
    assert slugs(KnowledgeBase(engine).search("pedreiro")) == ["other"]


@pytest.mark.django_db
def test_python_index_is_reused_between_searches(
    entry: Callable[..., Any], django_assert_max_num_queries: Any
) -> None:
    entry("a", "Encanador")
    kb = KnowledgeBase("python")
    kb.search("encanador")
    # Warm: the index is known fresh from the cache's version; one query fetches the entries.
    with django_assert_max_num_queries(1):
        assert slugs(kb.search("encanador")) == ["a"]


@pytest.mark.django_db
def test_engine_setting(settings: Any) -> None:
    on_postgres = connection.vendor == "postgresql"
    assert KnowledgeBase().engine == ("postgres" if on_postgres else "python")
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "KNOWLEDGE_SEARCH_ENGINE": "python"}
    assert KnowledgeBase().engine == "python"
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "KNOWLEDGE_SEARCH_ENGINE": "postgres"}
    assert KnowledgeBase().engine == ("postgres" if on_postgres else "python")
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "KNOWLEDGE_SEARCH_ENGINE": "elastic"}
    assert KnowledgeBase().engine == ("postgres" if on_postgres else "python")
