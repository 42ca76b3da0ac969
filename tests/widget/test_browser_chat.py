"""The widget end to end in Chromium against the real server: chat, stream, navigate, rate."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.widget.conftest import ChatServer, OpenAIProcess, shot

pytestmark = pytest.mark.browser

QUESTION = (
    "Olá! Preciso contratar um eletricista para trocar três tomadas e instalar um chuveiro "
    "novo no banheiro do meu apartamento ainda nesta semana, de preferência pela manhã."
)


def record_frames(page: Any) -> list[dict[str, Any]]:
    """Every frame the widget sends, parsed."""
    sent: list[dict[str, Any]] = []

    def on_socket(ws: Any) -> None:
        ws.on("framesent", lambda payload: sent.append(json.loads(payload)))

    page.on("websocket", on_socket)
    return sent


def open_chat(page: Any) -> None:
    page.locator(".sc-launcher").click()
    dialog = page.get_by_role("dialog", name="Chat com Sophie")
    expect(dialog).to_be_visible()
    dialog.evaluate("el => Promise.all(el.getAnimations().map((a) => a.finished))")
    expect(page.locator(".sc-status")).to_have_attribute("data-state", "online")


def ask(page: Any, text: str) -> None:
    page.locator("#sc-input").fill(text)
    page.locator("#sc-input").press("Enter")


def answers(page: Any) -> Any:
    return page.locator(".sc-items .sc-assistant:not(.sc-streaming)")


def test_open_send_stream_minimize_navigate_close_and_rate(
    page: Any, chat_server: ChatServer, openai_process: OpenAIProcess
) -> None:
    openai_process.configure(content="@echo", tokens_per_second=15, ttft=0.6)
    page.goto(chat_server.url())
    launcher = page.locator(".sc-launcher")
    expect(launcher).to_have_attribute("aria-label", "Abrir o chat com Sophie")
    shot(page, "closed")

    open_chat(page)
    expect(page.locator("#sc-input")).to_be_focused()
    # Counts what the live region announces: the answer once, never per delta.
    page.evaluate(
        """() => {
        const live = document.querySelector('#sophie-chat').shadowRoot.querySelector('[aria-live]');
        window.__announced = [];
        new MutationObserver(() => live.textContent && window.__announced.push(live.textContent))
          .observe(live, {childList: true, characterData: true, subtree: true});
    }"""
    )
    ask(page, QUESTION)
    expect(page.locator(".sc-items .sc-user .sc-body")).to_have_text(QUESTION)
    expect(page.locator(".sc-typing")).to_be_visible()
    streaming = page.locator(".sc-items .sc-assistant.sc-streaming .sc-body")
    expect(streaming).not_to_be_empty()
    partial = streaming.text_content()
    shot(page, "streaming")
    expect(answers(page)).to_have_count(1)
    final = answers(page).locator(".sc-body").text_content()
    assert partial
    assert QUESTION.startswith(partial.strip())
    assert len(partial) < len(final)
    assert final.strip() == QUESTION
    expect(page.locator(".sc-typing")).to_be_hidden()
    page.wait_for_timeout(200)
    assert page.evaluate("window.__announced") == [f"Sophie diz: {QUESTION}"]
    shot(page, "answered")

    # Shift+Enter is a new line, Enter would send.
    page.locator("#sc-input").type("linha 1")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("linha 2")
    expect(page.locator("#sc-input")).to_have_value("linha 1\nlinha 2")

    # Escape minimizes; focus goes back to the launcher; the draft is kept.
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(launcher).to_be_focused()

    # Another page: the conversation and the minimized state follow.
    page.locator("#next").click()
    page.wait_for_url("**/other/")
    expect(page.locator(".sc-launcher")).to_be_visible()
    expect(page.get_by_role("dialog")).to_be_hidden()
    open_chat(page)
    expect(page.locator(".sc-items .sc-msg")).to_have_count(2)
    expect(page.locator("#sc-input")).to_have_value("linha 1\nlinha 2")
    page.locator("#sc-input").fill("")

    # Open state follows too.
    page.locator("#next").click()
    page.wait_for_url("**/widget-test/home/")
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(page.locator(".sc-items .sc-msg")).to_have_count(2)

    # End the conversation, then rate it with the keyboard only.
    page.get_by_role("button", name="Encerrar conversa").click()
    page.get_by_role("button", name="Encerrar", exact=True).click()
    first_star = page.get_by_role("radio", name="1 de 5 estrelas")
    expect(first_star).to_be_focused()
    page.keyboard.press("Space")
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    expect(page.get_by_role("radio", name="4 de 5 estrelas")).to_be_checked()
    page.keyboard.press("Tab")
    page.keyboard.type("Rápido e claro")
    shot(page, "rating")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Obrigado pela sua avaliação!")).to_be_visible()
    rows = chat_server.query(
        "SELECT rating, rating_comment, status FROM sophie_chat_chatsession"
        " WHERE rating IS NOT NULL AND rating_comment = ?",
        "Rápido e claro",
    )
    assert rows == [(4, "Rápido e claro", "closed")]
    page.get_by_role("button", name="Iniciar uma nova conversa").click()
    expect(page.locator(".sc-items .sc-msg")).to_have_count(0)
    expect(page.locator(".sc-greeting")).to_be_visible()
    expect(page.locator("#sc-input")).to_be_focused()


def test_unread_badge_counts_answers_that_arrive_while_minimized(
    page: Any, chat_server: ChatServer, openai_process: OpenAIProcess
) -> None:
    openai_process.configure(content="@echo", tokens_per_second=20, ttft=0.5)
    page.goto(chat_server.url())
    open_chat(page)
    ask(page, "Quanto custa uma diária?")
    page.keyboard.press("Escape")
    badge = page.locator(".sc-badge")
    expect(badge).to_have_text("1")
    expect(page.locator(".sc-launcher")).to_have_attribute(
        "aria-label", "Abrir o chat com Sophie (1 mensagem não lida)"
    )
    page.reload()
    expect(page.locator(".sc-badge")).to_have_text("1")
    page.locator(".sc-launcher").click()
    expect(page.locator(".sc-badge")).to_be_hidden()
    expect(page.locator(".sc-launcher")).to_have_attribute("aria-label", "Minimizar o chat")
    page.keyboard.press("Escape")
    expect(page.locator(".sc-launcher")).to_have_attribute("aria-label", "Abrir o chat com Sophie")


def test_page_context_status_and_spa_navigation(page: Any, chat_server: ChatServer) -> None:
    sent = record_frames(page)
    page.goto(chat_server.url("/widget-test/missing/"))
    open_chat(page)
    page.wait_for_timeout(200)
    pages = [f for f in sent if f["type"] == "page"]
    assert pages[-1]["status"] == 404
    assert pages[-1]["url"].endswith("/widget-test/missing/")
    assert pages[-1]["title"] == "Página não encontrada"
    page.evaluate("SophieChat.page({url: location.origin + '/spa/step-2', title: 'Passo 2'})")
    page.evaluate("SophieChat.send('Onde estou?')")
    expect(answers(page)).to_have_count(1)
    spa = [f for f in sent if f["type"] == "page"][-1]
    assert spa["url"].endswith("/spa/step-2")
    assert spa["title"] == "Passo 2"
    message = next(f for f in sent if f["type"] == "message")
    assert message["page"]["url"].endswith("/spa/step-2")
    # The JS API: close and toggle.
    page.evaluate("SophieChat.close()")
    expect(page.get_by_role("dialog")).to_be_hidden()
    page.evaluate("SophieChat.toggle()")
    expect(page.get_by_role("dialog")).to_be_visible()


def test_links_open_in_a_new_tab_and_clicks_are_reported(
    page: Any, chat_server: ChatServer, openai_process: OpenAIProcess
) -> None:
    openai_process.configure(
        content="Veja [a outra página](/widget-test/other/) para detalhes.", tokens_per_second=0
    )
    sent = record_frames(page)
    page.goto(chat_server.url())
    open_chat(page)
    ask(page, "Onde vejo detalhes?")
    link = answers(page).locator("a")
    expect(link).to_have_attribute("target", "_blank")
    rel = (link.get_attribute("rel") or "").split()
    assert {"noopener", "noreferrer"} <= set(rel)
    with page.context.expect_page() as popup:
        link.click()
    popup.value.close()
    clicks = [f for f in sent if f["type"] == "link"]
    seq = int(answers(page).first.get_attribute("data-seq"))
    assert clicks == [
        {"type": "link", "message_seq": seq, "url": chat_server.url("/widget-test/other/")}
    ]


def test_escalation_shows_the_support_contacts(page: Any, chat_server: ChatServer) -> None:
    page.goto(chat_server.url())
    open_chat(page)
    ask(page, "Quero falar com um atendente humano, por favor")
    card = page.get_by_role("group", name="Fale com a nossa equipe de suporte")
    expect(card).to_be_visible()
    expect(card.get_by_role("link", name="suporte@example.com")).to_have_attribute(
        "href", "mailto:suporte@example.com"
    )
    expect(card.get_by_role("link", name="+55 11 4000-1234")).to_have_attribute(
        "href", "tel:+551140001234"
    )
    expect(card.get_by_role("link", name="+55 11 99876-5432")).to_have_attribute(
        "href", "https://wa.me/5511998765432"
    )
    expect(card).to_contain_text("Seg a sex, 8h às 18h")


def test_older_messages_load_when_scrolled_to_the_top(
    page: Any, chat_server: ChatServer, openai_process: OpenAIProcess
) -> None:
    openai_process.configure(content="@echo", tokens_per_second=0)
    page.goto(chat_server.url())
    open_chat(page)
    for i in range(12):
        page.evaluate(f"SophieChat.send('pergunta {i:02d}')")
    expect(answers(page)).to_have_count(12, timeout=20_000)
    page.reload()
    expect(page.locator(".sc-items .sc-msg")).to_have_count(20)
    page.locator(".sc-list").evaluate("el => { el.scrollTop = 0; }")
    expect(page.locator(".sc-items .sc-msg")).to_have_count(24)
    seqs = page.locator(".sc-items .sc-msg").evaluate_all("els => els.map(e => +e.dataset.seq)")
    assert seqs == sorted(set(seqs))
    assert len(seqs) == 24
    texts = page.locator(".sc-items .sc-user .sc-body").all_text_contents()
    assert texts == [f"pergunta {i:02d}" for i in range(12)]


def test_an_expired_session_starts_fresh_with_a_notice(page: Any, chat_server: ChatServer) -> None:
    page.goto(chat_server.url())
    open_chat(page)
    ask(page, "Primeira conversa")
    expect(answers(page)).to_have_count(1)
    session_id = page.evaluate("JSON.parse(sessionStorage['sophie-chat:v1']).sessionId")
    chat_server.query(
        "UPDATE sophie_chat_chatsession SET last_activity_at = '2020-01-01 00:00:00' WHERE id = ?",
        session_id.replace("-", ""),
    )
    page.reload()
    expect(page.get_by_role("status")).to_have_text(
        "Sua conversa anterior expirou; esta é uma nova conversa."
    )
    expect(page.locator(".sc-items .sc-msg")).to_have_count(0)


def test_keyboard_only_with_visible_focus(page: Any, chat_server: ChatServer) -> None:
    page.goto(chat_server.url())
    active = "() => document.querySelector('#sophie-chat').shadowRoot.activeElement?.className"
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate(active) == "sc-launcher":
            break
    assert page.evaluate(active) == "sc-launcher"
    outline = page.locator(".sc-launcher").evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline == "solid"  # the focus ring shows
    page.keyboard.press("Enter")
    expect(page.locator("#sc-input")).to_be_focused()
    page.keyboard.type("Tudo pelo teclado")
    page.keyboard.press("Enter")
    expect(answers(page)).to_have_count(1)
    page.keyboard.press("Shift+Tab")  # from the text box back into the message list
    assert page.evaluate(active) == "sc-list"
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert page.evaluate(active) == "sc-launcher"


def test_an_english_page_gets_an_english_widget(browser: Any, chat_server: ChatServer) -> None:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    try:
        page.goto(chat_server.url())
        launcher = page.locator(".sc-launcher")
        expect(launcher).to_have_attribute("aria-label", "Open chat with Sophie")
        launcher.click()
        expect(page.get_by_role("dialog", name="Chat with Sophie")).to_be_visible()
        expect(page.locator("#sc-input")).to_have_attribute("placeholder", "Type your message…")
        expect(page.locator(".sc-greeting")).to_have_text(
            "Hi! I'm Sophie. How can I help you today?"
        )
    finally:
        context.close()


def test_two_tabs_show_the_same_conversation_once(
    page: Any, chat_server: ChatServer, openai_process: OpenAIProcess
) -> None:
    openai_process.configure(content="@echo", tokens_per_second=20, ttft=0.2)
    page.goto(chat_server.url())
    open_chat(page)
    other = page.context.new_page()  # same visitor (cookies), its own sessionStorage
    other.goto(chat_server.url("/widget-test/other/"))
    open_chat(other)
    ask(page, "Mensagem da primeira aba")
    for tab in (page, other):
        expect(answers(tab)).to_have_count(1)
        expect(tab.locator(".sc-items .sc-user")).to_have_count(1)
        expect(tab.locator(".sc-items .sc-user .sc-body")).to_have_text("Mensagem da primeira aba")
    ask(other, "Resposta da segunda aba")
    for tab in (page, other):
        expect(answers(tab)).to_have_count(2)
        seqs = tab.locator(".sc-items .sc-msg").evaluate_all("els => els.map(e => +e.dataset.seq)")
        assert seqs == [1, 2, 3, 4]


def test_stopping_an_answer(
    page: Any, chat_server: ChatServer, openai_process: OpenAIProcess
) -> None:
    openai_process.configure(content="@echo", tokens_per_second=4, ttft=0.1)
    page.goto(chat_server.url())
    open_chat(page)
    ask(page, QUESTION)
    expect(page.locator(".sc-items .sc-assistant.sc-streaming .sc-body")).not_to_be_empty()
    page.get_by_role("button", name="Parar resposta").click()
    done = answers(page)
    expect(done).to_have_count(1)
    expect(done.locator(".sc-state")).to_have_text("Você parou esta resposta.")
    expect(page.get_by_role("button", name="Parar resposta")).to_be_hidden()
    assert len(done.locator(".sc-body").text_content() or "") < len(QUESTION)


def test_a_fallback_answer_says_the_assistant_is_in_reduced_mode(
    page: Any, chat_server: ChatServer, openai_process: OpenAIProcess
) -> None:
    openai_process.configure(status=500)
    try:
        page.goto(chat_server.url())
        open_chat(page)
        ask(page, "Como funciona o pagamento?")
        note = answers(page).last.get_by_role("note")
        expect(note).to_contain_text("modo reduzido")
    finally:
        openai_process.configure(status=200)


def _visitor_sessions(page: Any, chat_server: ChatServer) -> int:
    key = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
    rows = chat_server.query(
        "SELECT count(*) FROM sophie_chat_chatsession WHERE visitor_key = ?", key
    )
    return int(rows[0][0])


def test_a_visitor_who_never_writes_leaves_no_chat_session(
    page: Any, chat_server: ChatServer
) -> None:
    page.goto(chat_server.url())
    open_chat(page)
    expect(page.locator(".sc-greeting")).to_be_visible()
    page.goto(chat_server.url("/widget-test/other/"))  # the open widget connects again
    expect(page.locator(".sc-status")).to_have_attribute("data-state", "online")
    assert page.evaluate("JSON.parse(sessionStorage['sophie-chat:v1']).sessionId") is None
    assert _visitor_sessions(page, chat_server) == 0
    # The first message creates the session; from then on the visitor is a returning one.
    ask(page, "Primeira mensagem")
    expect(answers(page)).to_have_count(1)
    assert _visitor_sessions(page, chat_server) == 1
    assert page.evaluate("JSON.parse(sessionStorage['sophie-chat:v1']).sessionId")
    page.reload()
    expect(page.locator(".sc-items .sc-msg")).to_have_count(2)
    expect(page.locator(".sc-greeting")).to_be_hidden()


def test_a_tab_showing_an_ended_chat_follows_the_next_one(
    page: Any, chat_server: ChatServer, openai_process: OpenAIProcess
) -> None:
    openai_process.configure(content="@echo", tokens_per_second=30, ttft=0.1)
    page.goto(chat_server.url())
    open_chat(page)
    other = page.context.new_page()  # same visitor, opened before the first message
    other.goto(chat_server.url("/widget-test/other/"))
    open_chat(other)
    ask(page, "Primeira conversa")
    for tab in (page, other):
        expect(answers(tab)).to_have_count(1)
    page.get_by_role("button", name="Encerrar conversa").click()
    page.get_by_role("button", name="Encerrar", exact=True).click()
    for tab in (page, other):  # both show the rating form of the ended chat
        expect(tab.get_by_role("radio", name="1 de 5 estrelas")).to_be_visible()
    page.get_by_role("button", name="Pular").click()
    page.get_by_role("button", name="Iniciar uma nova conversa").click()
    ask(page, "Segunda conversa")
    # The other tab drops the ended chat and its rating form, and shows the new one.
    for tab in (page, other):
        expect(tab.locator(".sc-items .sc-user .sc-body")).to_have_text(["Segunda conversa"])
        expect(answers(tab)).to_have_count(1)
        expect(tab.locator("#sc-input")).to_be_visible()
        expect(tab.get_by_role("radio", name="1 de 5 estrelas")).to_be_hidden()
    seqs = other.locator(".sc-items .sc-msg").evaluate_all("els => els.map(e => +e.dataset.seq)")
    assert seqs == [1, 2]
    assert _visitor_sessions(page, chat_server) == 2
