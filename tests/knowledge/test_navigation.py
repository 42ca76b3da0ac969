"""Page guides matched by URL pattern or view name, error page help, and the FAQ."""

from __future__ import annotations

from typing import Any

import pytest

from sophie_chat.knowledge.faq import get_faq
from sophie_chat.knowledge.loader import LoadReport
from sophie_chat.knowledge.navigation import get_navigation_help
from sophie_chat.models import KnowledgeBaseEntry

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "slug"),
    [
        ("/", "pagina-inicial"),
        ("https://example.com/servicos/", "pagina-servicos"),
        ("/servicos/diarista/", "pagina-detalhe-servico"),
        ("/servicos/diarista/?cidade=sp#topo", "pagina-detalhe-servico"),
        ("/pedidos/123/", "pagina-meus-pedidos"),
        ("/conta/senha/", "pagina-conta"),
    ],
)
def test_guide_per_page_pattern(marketplace_kb: LoadReport, url: str, slug: str) -> None:
    help_ = get_navigation_help(url, "pt-br")
    assert help_ is not None
    assert help_.slug == slug
    assert help_.source == "knowledge_base"


def test_most_specific_pattern_wins_and_unknown_pages_have_none(
    marketplace_kb: LoadReport,
) -> None:
    # ^/servicos/[\w-]+/$ is longer than ^/servicos/$ and the only one matching.
    assert get_navigation_help("/servicos/pintor/", "pt-br").slug == "pagina-detalhe-servico"
    assert get_navigation_help("/blog/2024/", "pt-br") is None
    assert get_navigation_help("", "pt-br") is None


def test_language_and_audience(marketplace_kb: LoadReport) -> None:
    assert get_navigation_help("/pedidos/", "en").slug == "page-orders"
    # No English guide for the dashboard: the Portuguese one is better than nothing.
    assert get_navigation_help("/painel/", "en").slug == "pagina-painel-prestador"
    # A client does not get the providers' dashboard guide.
    assert get_navigation_help("/painel/", "pt-br", audience="client") is None
    assert get_navigation_help("/painel/", "pt-br", audience="provider") is not None


def test_view_name_patterns(db: None) -> None:
    KnowledgeBaseEntry.objects.create(
        slug="admin-home",
        title="Administração",
        content="Painel da equipe.",
        url_pattern="admin:index",
    )
    assert get_navigation_help("admin:index", "pt-br").slug == "admin-home"
    # A path is resolved to its view name.
    assert get_navigation_help("/admin/", "pt-br").slug == "admin-home"
    assert get_navigation_help("admin:login", "pt-br") is None


def test_invalid_regex_in_the_database_is_ignored(db: None) -> None:
    KnowledgeBaseEntry.objects.create(slug="bad", title="x", content="x", url_pattern="^/a/(")
    KnowledgeBaseEntry.objects.create(slug="good", title="y", content="y", url_pattern="^/a/")
    assert get_navigation_help("/a/b/", "pt-br").slug == "good"


@pytest.mark.parametrize(
    ("status", "language", "title_part"),
    [
        (404, "pt-br", "Página não encontrada"),
        (404, "en", "Page not found"),
        (410, "pt-br", "Página não encontrada"),
        (403, "pt-br", "Acesso negado"),
        (401, "en", "Access denied"),
        (500, "pt-br", "Erro no site"),
        (503, "en", "Site error"),
    ],
)
def test_builtin_error_help(db: None, status: int, language: str, title_part: str) -> None:
    help_ = get_navigation_help("/qualquer/", language, status=status)
    assert help_.source == "builtin"
    assert title_part in help_.title
    assert help_.status == status


def test_error_help_from_the_site_and_main_pages(marketplace_kb: LoadReport) -> None:
    KnowledgeBaseEntry.objects.create(
        slug="erro-5xx",
        title="Estamos com instabilidade",
        content="Tente daqui a pouco.",
        url_pattern="status:5xx",
    )
    KnowledgeBaseEntry.objects.create(
        slug="erro-503",
        title="Manutenção programada",
        content="Voltamos às 6h.",
        url_pattern="status:503",
    )
    assert get_navigation_help("/x/", "pt-br", status=503).slug == "erro-503"
    assert get_navigation_help("/x/", "pt-br", status=500).slug == "erro-5xx"
    not_found = get_navigation_help("/pagina-que-nao-existe/", "pt-br", status=404)
    assert not_found.source == "builtin"
    # A lost visitor gets the main pages of the site to find their way.
    urls = [link["url"] for link in not_found.links]
    assert "/" in urls
    assert "/servicos/" in urls
    # As markdown links, so the offline answer shows them as links, not bare paths.
    assert "](</servicos/>)" in not_found.as_context()["content"]


def test_faq(marketplace_kb: LoadReport) -> None:
    pt = get_faq("pt-br")
    assert pt
    assert all(e.category == "faq" and e.language == "pt-br" for e in pt)
    assert [e.title for e in pt] == sorted(e.title for e in pt)
    assert "solicitar-orcamento" not in {e.slug for e in get_faq("pt-br", audience="provider")}
    assert {e.slug for e in get_faq("en")} == {"how-to-hire"}
    assert len(get_faq("pt-br", limit=2)) == 2
    KnowledgeBaseEntry.objects.filter(language="en").delete()
    assert get_faq("en") == get_faq("pt-br")


def test_warm_page_help_runs_no_query(
    marketplace_kb: LoadReport, django_assert_num_queries: Any
) -> None:
    get_navigation_help("/", "pt-br")
    with django_assert_num_queries(0):
        assert get_navigation_help("/servicos/pintor/", "pt-br").slug == "pagina-detalhe-servico"
        assert get_navigation_help("/painel/", "pt-br", audience="client") is None
        assert get_navigation_help("/pedidos/", "en").slug == "page-orders"
        lost = get_navigation_help("/x/", "pt-br", status=404)
        assert "/servicos/" in [link["url"] for link in lost.links]


def test_a_guide_saved_in_this_process_is_seen_at_once(marketplace_kb: LoadReport) -> None:
    assert get_navigation_help("/blog/2024/", "pt-br") is None
    guide = KnowledgeBaseEntry.objects.create(
        slug="blog", title="Blog", content="Artigos.", url_pattern=r"^/blog/"
    )
    assert get_navigation_help("/blog/2024/", "pt-br").slug == "blog"
    guide.title = "Nosso blog"
    guide.save()
    assert get_navigation_help("/blog/2024/", "pt-br").title == "Nosso blog"
    guide.is_active = False
    guide.save()
    assert get_navigation_help("/blog/2024/", "pt-br") is None
    KnowledgeBaseEntry.objects.create(
        slug="erro-404", title="Sumiu", content="Procure na busca.", url_pattern="status:404"
    )
    assert get_navigation_help("/x/", "pt-br", status=404).slug == "erro-404"


def test_a_pages_guide_is_remembered_and_the_memo_is_bounded(
    marketplace_kb: LoadReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sophie_chat.knowledge import navigation

    resolved: list[str] = []
    real = navigation._view_name
    monkeypatch.setattr(navigation, "_view_name", lambda path: resolved.append(path) or real(path))
    for _ in range(3):
        assert (
            get_navigation_help("/servicos/pintor/?q=1", "pt-br").slug == "pagina-detalhe-servico"
        )
    assert get_navigation_help("/blog/", "pt-br") is None
    assert resolved == ["/servicos/pintor/", "/blog/"]
    # The same page for another audience or language is another answer.
    assert get_navigation_help("/painel/", "pt-br", audience="client") is None
    assert get_navigation_help("/painel/", "pt-br", audience="provider") is not None
    monkeypatch.setattr(navigation, "PAGE_MEMO_SIZE", 10)
    for n in range(25):
        get_navigation_help(f"/perfil/{n}/", "pt-br")
    assert len(navigation.index.per_version("navigation_pages", dict)) <= 10
