"""Kill the server mid-reply: the widget shows it, comes back, and loses or doubles nothing."""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from tests.widget.conftest import ChatServer, OpenAIProcess, shot
from tests.widget.test_browser_chat import answers, ask, open_chat

pytestmark = pytest.mark.browser

LONG = (
    "Quero entender como funciona o pagamento pela plataforma quando contrato uma diarista "
    "para limpar a casa inteira toda semana, incluindo taxas, reembolsos e cancelamentos."
)
OFFLINE = "Esta mensagem foi escrita sem conexão"


def test_server_killed_mid_reply_then_restarted(
    page: Any, chat_server: ChatServer, openai_process: OpenAIProcess
) -> None:
    openai_process.configure(content="@echo", tokens_per_second=6, ttft=0.2)
    page.goto(chat_server.url())
    open_chat(page)
    ask(page, LONG)
    expect(page.locator(".sc-items .sc-assistant.sc-streaming .sc-body")).not_to_be_empty()

    chat_server.kill()
    banner = page.locator(".sc-banner")
    expect(banner).to_contain_text("Conexão perdida")
    expect(page.locator(".sc-status")).to_have_attribute("data-state", "offline")
    expect(page.locator(".sc-status")).to_have_text("Reconectando…")

    # Typed while offline: shown at once, queued, kept in sessionStorage.
    openai_process.configure(content="@echo", tokens_per_second=0)
    ask(page, OFFLINE)
    queued = page.locator(".sc-items .sc-user").last
    expect(queued.locator(".sc-state")).to_have_text("Aguardando a conexão para enviar.")
    outbox = page.evaluate("JSON.parse(sessionStorage['sophie-chat:v1']).outbox")
    assert [frame["text"] for frame in outbox] == [OFFLINE]
    shot(page, "reconnecting")

    chat_server.start()
    # On a slow machine the widget's own backoff may reconnect before the click lands (the
    # button then goes away): either way it must come back online.
    with contextlib.suppress(PlaywrightTimeoutError):
        page.get_by_role("button", name="Tentar agora").click(timeout=3000)
    expect(page.locator(".sc-status")).to_have_attribute("data-state", "online")
    expect(banner).to_be_hidden()
    answered = answers(page).filter(has_text=OFFLINE)
    expect(answered).to_have_count(1)
    expect(queued.locator(".sc-state")).to_have_text("")
    assert page.evaluate("JSON.parse(sessionStorage['sophie-chat:v1']).outbox") == []

    # Every message exactly once, on screen and in the database.
    messages = page.locator(".sc-items .sc-msg")
    seqs = messages.evaluate_all("els => els.map(e => +e.dataset.seq)")
    assert len(seqs) == len(set(seqs)) == 4, seqs
    assert seqs == sorted(seqs)
    users = Counter(page.locator(".sc-items .sc-user .sc-body").all_text_contents())
    assert users == {LONG: 1, OFFLINE: 1}
    stored = chat_server.query(
        "SELECT content, COUNT(*) FROM sophie_chat_chatmessage WHERE sender = 'user'"
        " AND content IN (?, ?) GROUP BY content",
        LONG,
        OFFLINE,
    )
    assert dict(stored) == {LONG: 1, OFFLINE: 1}

    # A reload after all this shows the same transcript, still without duplicates.
    page.reload()
    expect(page.locator(".sc-items .sc-msg")).to_have_count(4)
    assert Counter(page.locator(".sc-items .sc-user .sc-body").all_text_contents()) == users
