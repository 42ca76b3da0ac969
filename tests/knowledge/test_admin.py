"""The knowledge base admin: list, filters, activation actions and the "test a question" page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from sophie_chat.knowledge.loader import LoadReport
from sophie_chat.knowledge.search import KnowledgeBase
from sophie_chat.models import KnowledgeBaseEntry

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.knowledge.admin_urls")]

CHANGELIST = "/admin/sophie_chat/knowledgebaseentry/"
TEST_PAGE = CHANGELIST + "test-question/"


@pytest.fixture
def staff_client(user_factory: Callable[..., Any]) -> Client:
    # English pages: the assertions below read the admin's messages.
    client = Client(headers={"accept-language": "en"})
    client.force_login(user_factory(is_staff=True, is_superuser=True))
    return client


def test_changelist_links_to_the_test_page_and_filters(
    marketplace_kb: LoadReport, staff_client: Client
) -> None:
    response = staff_client.get(CHANGELIST, {"category__exact": "service", "language": "pt-br"})
    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="{TEST_PAGE}"' in html
    assert "Eletricista" in html
    assert "Como cancelar um serviço contratado" not in html
    found = staff_client.get(CHANGELIST, {"q": "vazamento"}).content.decode()
    assert "Encanador" in found


def test_test_question_page_shows_results_with_scores(
    marketplace_kb: LoadReport, staff_client: Client
) -> None:
    assert "<form" in staff_client.get(TEST_PAGE).content.decode()
    response = staff_client.get(
        TEST_PAGE, {"q": "quero cancelar meu pedido", "language": "pt-br", "audience": "client"}
    )
    assert response.status_code == 200
    rows = response.context["rows"]
    assert rows[0]["result"].entry.slug == "cancelar-servico"
    assert all(r["result"].entry.audience in ("", "client") for r in rows)
    html = response.content.decode()
    assert f"{rows[0]['result'].score:.4f}" in html
    entry = KnowledgeBaseEntry.objects.get(slug="cancelar-servico", language="pt-br")
    assert f"{CHANGELIST}{entry.pk}/change/" in html


def test_test_question_page_says_when_nothing_matches(
    marketplace_kb: LoadReport, staff_client: Client
) -> None:
    response = staff_client.get(TEST_PAGE, {"q": "xyzzy", "language": "pt-br"})
    assert response.context["rows"] == []
    assert "No entry matches" in response.content.decode()


def test_test_question_page_is_for_staff_only(
    marketplace_kb: LoadReport, user_factory: Callable[..., Any]
) -> None:
    client = Client()
    assert client.get(TEST_PAGE, {"q": "senha"}).status_code == 302
    client.force_login(user_factory(is_staff=False))
    assert client.get(TEST_PAGE, {"q": "senha"}).status_code == 302
    client.force_login(user_factory(is_staff=True))  # staff without the view permission
    assert client.get(TEST_PAGE, {"q": "senha"}).status_code == 403


def test_activation_actions(marketplace_kb: LoadReport, staff_client: Client) -> None:
    entry = KnowledgeBaseEntry.objects.get(slug="servico-pintor")
    assert KnowledgeBase().search("pintor")
    response = staff_client.post(
        CHANGELIST, {"action": "deactivate", "_selected_action": [entry.pk]}, follow=True
    )
    assert "1 entry deactivated." in response.content.decode()
    assert not KnowledgeBaseEntry.objects.get(pk=entry.pk).is_active
    assert "servico-pintor" not in [r.entry.slug for r in KnowledgeBase().search("pintor")]
    staff_client.post(CHANGELIST, {"action": "activate", "_selected_action": [entry.pk]})
    assert KnowledgeBaseEntry.objects.get(pk=entry.pk).is_active
    assert KnowledgeBase().search("pintor")[0].entry.slug == "servico-pintor"


def test_editing_an_entry_updates_its_search_text(
    marketplace_kb: LoadReport, staff_client: Client
) -> None:
    entry = KnowledgeBaseEntry.objects.get(slug="servico-pintor")
    response = staff_client.post(
        f"{CHANGELIST}{entry.pk}/change/",
        {
            "title": "Pintor e grafiteiro",
            "slug": entry.slug,
            "language": entry.language,
            "category": entry.category,
            "audience": "",
            "is_active": "on",
            "content": entry.content,
            "keywords": entry.keywords,
            "url": entry.url,
            "url_pattern": "",
            "content_type": "",
            "object_id": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert KnowledgeBase().search("grafiteiro")[0].entry.pk == entry.pk


@pytest.mark.urls("tests.urls")
def test_registered_on_the_default_admin_site(
    marketplace_kb: LoadReport, staff_client: Client
) -> None:
    response = staff_client.get(TEST_PAGE, {"q": "esqueci a senha", "language": "pt-br"})
    assert response.status_code == 200
    assert response.context["rows"][0]["result"].entry.slug == "recuperar-senha"
