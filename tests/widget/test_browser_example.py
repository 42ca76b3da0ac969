"""The widget on the example marketplace, as a site installs it: roles, pages, error pages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.widget.conftest import ChatServer, shot
from tests.widget.test_browser_chat import answers, ask, open_chat, record_frames
from tests.widget.test_browser_layout import axe_violations, box, overlaps

pytestmark = pytest.mark.browser


@pytest.fixture
def visitor(browser: Any) -> Any:
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="pt-BR", timezone_id="America/Sao_Paulo"
    )
    context.set_default_timeout(10_000)
    yield context
    context.close()


def log_in(page: Any, server: ChatServer, username: str, password: str) -> None:
    page.goto(server.url("/entrar/"))
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.locator("input[name=password]").press("Enter")
    page.wait_for_url(lambda url: "/entrar/" not in url)


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("cliente", "Cancelamento e reembolso"),
        ("prestador", "Posso cancelar um serviço confirmado?"),
    ],
)
def test_the_same_question_gets_the_answer_for_the_users_role(
    visitor: Any, example_server: ChatServer, username: str, expected: str
) -> None:
    page = visitor.new_page()
    log_in(page, example_server, username, f"{username}123")
    open_chat(page)
    ask(page, "Como cancelar?")
    expect(answers(page)).to_have_count(1)
    expect(answers(page)).to_contain_text(expected)
    rows = example_server.query(
        "SELECT s.user_type FROM sophie_chat_chatsession s JOIN auth_user u ON u.id = s.user_id"
        " WHERE u.username = ?",
        username,
    )
    assert rows == [("client" if username == "cliente" else "provider",)]


def test_marketplace_pages_conversation_follows_and_404_is_reported(
    visitor: Any, example_server: ChatServer
) -> None:
    page = visitor.new_page()
    sent = record_frames(page)
    page.goto(example_server.url("/"))
    a11y = box(page.locator("#a11y-button"))
    assert not overlaps(box(page.locator(".sc-launcher")), a11y)
    open_chat(page)
    assert not overlaps(box(page.get_by_role("dialog")), a11y)
    ask(page, "Quais formas de pagamento vocês aceitam?")
    expect(answers(page)).to_have_count(1)
    shot(page, "marketplace")
    assert axe_violations(page) == []

    page.goto(example_server.url("/pagina-que-nao-existe/"))
    expect(page.get_by_role("dialog")).to_be_visible()  # still open on the next page
    expect(page.locator(".sc-items .sc-msg")).to_have_count(2)
    page.wait_for_timeout(300)
    last_page = [f for f in sent if f["type"] == "page"][-1]
    assert last_page["url"].endswith("/pagina-que-nao-existe/")
    # The example's 404 page says nothing: the browser's navigation timing tells the widget.
    assert last_page["status"] == 404


def test_escalation_card_with_the_sites_support_contacts(
    visitor: Any, example_server: ChatServer
) -> None:
    page = visitor.new_page()
    page.goto(example_server.url("/como-funciona/"))
    open_chat(page)
    ask(page, "Quero falar com um atendente humano")
    card = page.get_by_role("group", name="Fale com a nossa equipe de suporte")
    expect(card).to_be_visible()
    expect(card.get_by_role("link", name="+5511400000000")).to_have_attribute(
        "href", "https://wa.me/5511400000000"
    )
    expect(card.get_by_role("link", name="Central de ajuda")).to_have_attribute(
        "href", "/como-funciona/#suporte"
    )
    expect(card.get_by_role("link", name="suporte@example.com")).to_be_visible()
    shot(page, "escalation")


def test_sending_too_fast_shows_a_countdown_and_holds_the_message(
    visitor: Any, example_server: ChatServer
) -> None:
    # Last in this module: it spends the per-user quota (10 a minute) of its own user.
    page = visitor.new_page()
    log_in(page, example_server, "admin", "admin123")
    open_chat(page)
    page.evaluate("for (let i = 0; i < 11; i++) SophieChat.send(`mensagem ${i}`)")
    notice = page.locator(".sc-notice")
    expect(notice).to_have_text(re.compile(r"^Você está enviando mensagens rápido demais\. Tente"))
    first = int(re.findall(r"\d+", notice.text_content() or "")[0])
    page.wait_for_timeout(2100)
    assert int(re.findall(r"\d+", notice.text_content() or "")[0]) < first  # it counts down
    held = page.locator(".sc-items .sc-user").last
    expect(held.locator(".sc-body")).to_have_text("mensagem 10")
    expect(held.locator(".sc-state")).to_have_text("Será enviada em instantes.")
    outbox = page.evaluate("JSON.parse(sessionStorage['sophie-chat:v1']).outbox")
    assert [frame["text"] for frame in outbox] == ["mensagem 10"]
    stored = example_server.query(
        "SELECT COUNT(*) FROM sophie_chat_chatmessage m JOIN sophie_chat_chatsession s"
        " ON s.id = m.session_id JOIN auth_user u ON u.id = s.user_id"
        " WHERE u.username = 'admin' AND m.sender = 'user'"
    )
    assert stored == [(10,)]
