"""KnowledgeBase.search: normalisation, stemming, filters and index freshness, on both engines."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection

from sophie_chat.knowledge import index, search, text
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
def test_warm_python_search_runs_no_query_and_returns_whole_entries(
    entry: Callable[..., Any], django_assert_num_queries: Any
) -> None:
    e = entry(
        "a",
        "Encanador",
        "Vazamentos e desentupimento.",
        keywords="cano, pia",
        url="/servicos/encanador/",
        audience="client",
        category="service",
        language="pt-br",
    )
    kb = KnowledgeBase("python")
    kb.search("encanador")
    # Warm: the version is memoised and the index holds the entries' fields.
    with django_assert_num_queries(0):
        results = kb.search("encanador", audience="client")
    got, fresh = results[0].entry, KnowledgeBaseEntry.objects.get(pk=e.pk)
    assert results[0].as_context()["content"] == "Vazamentos e desentupimento."
    for field in KnowledgeBaseEntry._meta.concrete_fields:
        if field.attname not in ("search_text", "created_at", "updated_at"):
            assert getattr(got, field.attname) == getattr(fresh, field.attname), field.attname
    assert got._state.adding is False
    # The columns not kept in memory are loaded when read, as with QuerySet.defer().
    with django_assert_num_queries(1):
        assert got.search_text == fresh.search_text
    # Each search makes its own instances: changing one changes no other caller's.
    got.title = "changed"
    assert kb.search("encanador")[0].entry.title == "Encanador"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The index's clock, moved by hand: ``clock[0] += 1.5``."""
    now = [time.monotonic()]
    monkeypatch.setattr(index, "_now", lambda: now[0])
    index.forget()
    return now


class CountingCache:
    def __init__(self, real: Any) -> None:
        self.real = real
        self.gets = 0

    def get(self, key: str, *args: Any) -> Any:
        self.gets += 1
        return self.real.get(key, *args)

    def set(self, *args: Any) -> Any:
        return self.real.set(*args)


@pytest.mark.django_db
def test_the_version_is_read_from_the_cache_once_per_memo_window(
    entry: Callable[..., Any], clock: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    entry("a", "Encanador")
    counting = CountingCache(index.cache)
    monkeypatch.setattr(index, "cache", counting)
    kb = KnowledgeBase("python")
    clock[0] += index.VERSION_MEMO_SECONDS  # past the memo the save left
    for _ in range(20):
        clock[0] += index.VERSION_MEMO_SECONDS / 40
        assert slugs(kb.search("encanador")) == ["a"]
    assert counting.gets == 1
    clock[0] += index.VERSION_MEMO_SECONDS
    kb.search("encanador")
    assert counting.gets == 2


@pytest.mark.django_db
def test_a_save_in_this_process_is_seen_at_once(
    entry: Callable[..., Any], clock: list[float]
) -> None:
    e = entry("garden", "Jardineiro", "Poda e grama.")
    kb = KnowledgeBase("python")
    assert slugs(kb.search("jardineiro")) == ["garden"]
    e.title, e.content = "Pintor", "Paredes."
    e.save()
    # The clock has not moved: the signal's new version replaced the memo.
    assert kb.search("jardineiro") == []
    assert kb.search("pintor")[0].entry.content == "Paredes."


@pytest.mark.django_db
def test_a_bump_by_another_process_is_seen_after_the_memo_window(
    entry: Callable[..., Any], clock: list[float], django_assert_num_queries: Any
) -> None:
    e = entry("garden", "Jardineiro", "Poda e grama.")
    kb = KnowledgeBase("python")
    assert slugs(kb.search("jardineiro")) == ["garden"]
    # Another process renames the entry and bumps the shared version: its write reaches this
    # process's database but not its signals (update() keeps updated_at, so only the version
    # tells), and the version is written to the cache directly.
    KnowledgeBaseEntry.objects.filter(pk=e.pk).update(
        title="Pintor", content="Paredes.", search_text=""
    )
    cache.set(index.VERSION_KEY, "written-by-another-process")
    clock[0] += index.VERSION_MEMO_SECONDS * 0.9
    with django_assert_num_queries(0):
        assert slugs(kb.search("jardineiro")) == ["garden"]  # within the memo window
    clock[0] += index.VERSION_MEMO_SECONDS * 0.2
    assert kb.search("jardineiro") == []
    assert kb.search("pintor")[0].entry.title == "Pintor"


@pytest.mark.django_db
def test_an_unreachable_cache_is_asked_once_per_memo_window(
    entry: Callable[..., Any], clock: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    entry("a", "Encanador")

    class Down:
        gets = 0

        def get(self, key: str, *args: Any) -> Any:
            Down.gets += 1
            raise ConnectionError("cache server down")

    monkeypatch.setattr(index, "cache", Down())
    index.forget()
    kb = KnowledgeBase("python")
    for _ in range(5):
        assert slugs(kb.search("encanador")) == ["a"]
    assert Down.gets == 1


@pytest.mark.django_db
def test_engine_setting(settings: Any) -> None:
    # auto is the portable engine on every database; PostgreSQL full-text search is chosen.
    on_postgres = connection.vendor == "postgresql"
    assert KnowledgeBase().engine == "python"
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "KNOWLEDGE_SEARCH_ENGINE": "python"}
    assert KnowledgeBase().engine == "python"
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "KNOWLEDGE_SEARCH_ENGINE": "postgres"}
    assert KnowledgeBase().engine == ("postgres" if on_postgres else "python")
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "KNOWLEDGE_SEARCH_ENGINE": "elastic"}
    assert KnowledgeBase().engine == "python"
