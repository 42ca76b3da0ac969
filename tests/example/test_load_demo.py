"""``load_demo`` builds the demo marketplace and its knowledge base, and can run again."""

from __future__ import annotations

import re
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.urls import resolve

from sophie_chat.knowledge.loader import KEYS as KB_KEYS

KNOWLEDGE = Path(__file__).resolve().parents[2] / "example_project" / "knowledge"


def _counts() -> dict[str, int]:
    from django.contrib.auth.models import User

    from marketplace.models import Booking, Category, Profile, Service
    from sophie_chat.models import ChatMessage, ChatSession, KnowledgeBaseEntry

    return {
        model.__name__: model.objects.count()
        for model in (
            User,
            Profile,
            Category,
            Service,
            Booking,
            KnowledgeBaseEntry,
            ChatSession,
            ChatMessage,
        )
    }


@pytest.fixture
def demo(db: None) -> str:
    out = StringIO()
    call_command("load_demo", stdout=out, stderr=StringIO())
    return out.getvalue()


def test_load_demo_is_idempotent(demo: str) -> None:
    first = _counts()
    assert first["Service"] >= 20
    assert first["Category"] >= 8
    assert first["KnowledgeBaseEntry"] >= 2 * (30 + first["Service"])
    # Past chats, so the staff dashboard and the weekly report have something to show.
    assert first["ChatSession"] == 150
    assert first["ChatMessage"] >= 1000
    call_command("load_demo", stdout=StringIO(), stderr=StringIO())
    assert _counts() == first
    assert "Demo loaded: " in demo


def test_demo_accounts(demo: str) -> None:
    admin = authenticate(username="admin", password="admin123")
    assert admin is not None
    assert admin.is_superuser
    assert admin.is_staff
    ana = authenticate(username="cliente", password="cliente123")
    assert ana is not None
    assert (ana.first_name, ana.profile.kind) == ("Ana", "client")
    carlos = authenticate(username="prestador", password="prestador123")
    assert carlos is not None
    assert (carlos.first_name, carlos.profile.kind) == ("Carlos", "provider")
    assert carlos.profile.services.count() >= 3


def test_service_entries_link_to_their_service(demo: str) -> None:
    from django.contrib.contenttypes.models import ContentType

    from marketplace.models import Service
    from sophie_chat.models import KnowledgeBaseEntry

    service = Service.objects.get(slug="diarista-residencial")
    entries = KnowledgeBaseEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Service), object_id=str(service.pk)
    )
    assert sorted(e.language for e in entries) == ["en", "pt-br"]
    for entry in entries:
        assert entry.category == "service"
        assert entry.url == "/servicos/diarista-residencial/"
        assert "R$ 180,00" in entry.content
    assert "por diária" in entries.get(language="pt-br").content
    assert "per day" in entries.get(language="en").content


def test_price_question_finds_the_service_entry(demo: str) -> None:
    from sophie_chat.knowledge.search import KnowledgeBase

    for question, language in [
        ("Quanto custa uma diarista?", "pt-br"),
        ("How much is a cleaner?", "en"),
    ]:
        best = KnowledgeBase().search(question, language=language, limit=1)[0].entry
        assert best.slug == "servico-diarista-residencial", question
        assert "R$ 180,00" in best.content
        assert "/servicos/diarista-residencial/" in best.content


def test_every_page_has_a_guide_in_both_languages(demo: str) -> None:
    from sophie_chat.knowledge.navigation import get_navigation_help
    from sophie_chat.models import KnowledgeBaseEntry

    pages = {
        "/": "pagina-inicial",
        "/categorias/": "pagina-categorias",
        "/categorias/limpeza/": "pagina-categoria",
        "/servicos/": "pagina-lista-servicos",
        "/servicos/diarista-residencial/": "pagina-servico",
        "/seja-prestador/": "pagina-seja-prestador",
        "/como-funciona/": "pagina-como-funciona",
        "/entrar/": "pagina-entrar",
        "/minhas-contratacoes/": "pagina-minhas-contratacoes",
        "/painel/": "pagina-painel-prestador",
    }
    for language in ("pt-br", "en"):
        for path, slug in pages.items():
            guide = get_navigation_help(path, language)
            assert guide is not None, (language, path)
            assert guide.slug == slug, (language, path)
            entry = KnowledgeBaseEntry.objects.get(slug=slug, language=language)
            assert guide.title == entry.title, (language, path)
        error = get_navigation_help("/nao-existe/", language, status=404)
        assert error is not None
        assert error.slug == "pagina-nao-encontrada"
        assert error.source == "knowledge_base"


def _entries() -> list[dict[str, Any]]:
    entries = []
    for path in sorted(KNOWLEDGE.rglob("*.yaml")):
        entries += yaml.safe_load(path.read_text(encoding="utf-8"))
    return entries


def test_knowledge_files_cover_both_languages_alike() -> None:
    entries = _entries()
    slugs = {
        lang: {e["slug"] for e in entries if e["language"] == lang} for lang in ("pt-br", "en")
    }
    assert len(slugs["pt-br"]) >= 30
    assert slugs["pt-br"] == slugs["en"]
    for entry in entries:
        # The loader's keys, less the two the demo files never need (active, link).
        assert set(entry) <= KB_KEYS - {"active", "link"}, entry["slug"]


def test_knowledge_links_lead_to_real_pages() -> None:
    # A guide that sends users to a page that does not exist is worse than no guide.
    for entry in _entries():
        links = [entry["url"], *re.findall(r"\]\((/[^)#]*)", entry["content"])]
        links = [link for link in links if link]
        for link in links:
            path = link.split("#")[0]
            match = resolve(path)
            assert match.func.__name__ != "not_found", (entry["slug"], link)


def test_service_edits_reach_its_knowledge_entries(market: dict[str, Any]) -> None:
    from sophie_chat.models import KnowledgeBaseEntry

    service = market["diarista"]
    entries = KnowledgeBaseEntry.objects.filter(slug="servico-diarista-residencial")
    assert entries.count() == 2
    # A price changed in the admin is the price Sophie quotes.
    service.price = Decimal("195.00")
    service.available = False
    service.save()
    pt = entries.get(language="pt-br")
    assert "R$ 195,00 por diária" in pt.content
    assert "Sem agenda" in pt.content
    assert "R$ 195,00 per day" in entries.get(language="en").content
    service.delete()
    assert not entries.exists()
