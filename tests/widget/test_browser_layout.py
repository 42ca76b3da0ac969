"""Where the widget sits, how it scales, what hostile host CSS does to it, and axe-core."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from playwright.sync_api import expect

from tests.widget.conftest import ChatServer, OpenAIProcess, shot
from tests.widget.test_browser_chat import answers, ask, open_chat

pytestmark = pytest.mark.browser

ANSWER = (
    "Para contratar um eletricista:\n\n"
    "1. Busque **Eletricista** na página de serviços.\n"
    "2. Compare avaliações, preços e disponibilidade.\n"
    "3. Escolha data e horário e confirme o pedido.\n\n"
    "O pagamento fica retido pela plataforma até o serviço ser concluído. "
    "[Ver eletricistas](/widget-test/other/)"
)
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def box(locator: Any) -> dict[str, float]:
    result = locator.bounding_box()
    assert result is not None
    return result


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def axe_violations(page: Any) -> list[str]:
    """Run axe-core over the widget, its shadow DOM included."""
    page.evaluate(AXE_SCRIPT)
    return page.evaluate(
        """async (tags) => {
        const result = await axe.run(
            {include: [["#sophie-chat"]]}, {runOnly: {type: "tag", values: tags}});
        return result.violations.map(
            (v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" > ")).join(", ")})`);
    }""",
        AXE_TAGS,
    )


def test_desktop_window_is_380_by_600_above_the_accessibility_button(
    page: Any, chat_server: ChatServer, openai_process: OpenAIProcess
) -> None:
    openai_process.configure(content=ANSWER, tokens_per_second=0)
    page.goto(chat_server.url())
    a11y = box(page.locator("#a11y"))
    launcher = box(page.locator(".sc-launcher"))
    assert (launcher["width"], launcher["height"]) == (56, 56)
    assert launcher["y"] + launcher["height"] <= a11y["y"]  # stacked above it, not over it
    assert not overlaps(launcher, a11y)
    z_index = page.locator(".sc-launcher").evaluate("el => getComputedStyle(el).zIndex")
    assert z_index == "999"
    open_chat(page)
    window = box(page.get_by_role("dialog"))
    assert (window["width"], window["height"]) == (380, 600)
    assert not overlaps(window, a11y)
    assert not overlaps(window, launcher)
    composer = box(page.locator("#sc-input"))
    assert 30 <= composer["height"] <= 44  # one line, not collapsed nor stretched
    ask(page, "Como contrato um eletricista?")
    expect(answers(page).locator("ol li")).to_have_count(3)
    shot(page, "open")  # the docs show this one
    # The site's button is still clickable with the chat open.
    page.locator("#a11y").click(timeout=2000)


def test_phone_window_is_fullscreen(
    browser: Any, chat_server: ChatServer, openai_process: OpenAIProcess
) -> None:
    openai_process.configure(content=ANSWER, tokens_per_second=0)
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        locale="pt-BR",
        timezone_id="America/Sao_Paulo",
        has_touch=True,
        is_mobile=True,
    )
    page = context.new_page()
    try:
        page.goto(chat_server.url())
        open_chat(page)
        assert box(page.get_by_role("dialog")) == {"x": 0, "y": 0, "width": 390, "height": 844}
        expect(page.locator(".sc-launcher")).to_be_hidden()
        ask(page, "Como contrato um eletricista?")
        expect(answers(page)).to_have_count(1)
        shot(page, "mobile")
        page.get_by_role("button", name="Minimizar", exact=True).click()
        expect(page.get_by_role("dialog")).to_be_hidden()
        expect(page.locator(".sc-launcher")).to_be_visible()
    finally:
        context.close()


def test_aggressive_host_css_does_not_break_the_widget(page: Any, chat_server: ChatServer) -> None:
    page.goto(chat_server.url("/widget-test/hostile/"))
    launcher = page.locator(".sc-launcher")
    assert box(launcher)["width"] == 56
    colour = launcher.evaluate("el => getComputedStyle(el).backgroundColor")
    assert colour == "rgb(91, 43, 214)"  # the widget's primary colour, not the page's red
    open_chat(page)
    window = box(page.get_by_role("dialog"))
    assert (window["width"], window["height"]) == (380, 600)
    ask(page, "Ainda funciona?")
    expect(answers(page)).to_have_count(1)
    # And nothing of the widget leaks out: the page's own button keeps the page's style.
    page_button = page.locator("#a11y").evaluate("el => getComputedStyle(el).backgroundColor")
    assert page_button == "rgb(255, 0, 0)"


def test_axe_finds_no_violations_in_the_open_widget(page: Any, chat_server: ChatServer) -> None:
    page.goto(chat_server.url())
    assert axe_violations(page) == []  # closed: just the launcher
    open_chat(page)
    ask(page, "Quero falar com um atendente humano")
    expect(page.locator(".sc-card")).to_be_visible()
    page.locator("#sc-input").fill("x" * 1900)  # the counter shows near the limit
    expect(page.locator(".sc-counter")).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_role("button", name="Encerrar conversa").click()
    assert axe_violations(page) == []  # the confirmation
    page.get_by_role("button", name="Encerrar", exact=True).click()
    expect(page.get_by_role("radio", name="1 de 5 estrelas")).to_be_focused()
    assert axe_violations(page) == []  # the rating form


def test_reduced_motion_turns_animations_off(browser: Any, chat_server: ChatServer) -> None:
    context = browser.new_context(reduced_motion="reduce", locale="pt-BR")
    page = context.new_page()
    try:
        page.goto(chat_server.url())
        open_chat(page)
        duration = page.get_by_role("dialog").evaluate(
            "el => getComputedStyle(el).transitionDuration"
        )
        assert duration == "0s"
        page.keyboard.press("Escape")
        expect(page.get_by_role("dialog")).to_be_hidden(timeout=100)
    finally:
        context.close()


def test_works_under_a_strict_content_security_policy(page: Any, chat_server: ChatServer) -> None:
    refused: list[str] = []

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    page.on("console", on_console)
    response = page.goto(chat_server.url("/widget-test/csp/"))
    assert "script-src 'nonce-" in response.headers["content-security-policy"]
    open_chat(page)
    ask(page, "Funciona com CSP?")
    expect(answers(page)).to_have_count(1)
    assert box(page.locator(".sc-launcher"))["width"] == 56  # the stylesheet loaded
    assert refused == []


def test_bottom_left_with_custom_colours_and_offsets(page: Any, chat_server: ChatServer) -> None:
    # As a site would configure WIDGET: change the data attributes before the widget starts.
    page.add_init_script(
        """new MutationObserver((_, observer) => {
            const host = document.getElementById("sophie-chat");
            if (!host) return;
            Object.assign(host.dataset, {position: "bottom-left", primaryColor: "#0a7d4f",
                offsetBottom: "120", offsetSide: "40", zIndex: "5000"});
            observer.disconnect();
        }).observe(document, {childList: true, subtree: true});"""
    )
    page.goto(chat_server.url())
    launcher = page.locator(".sc-launcher")
    position = box(launcher)
    assert (position["x"], 800 - position["y"] - position["height"]) == (40, 120)
    style = launcher.evaluate(
        "el => [getComputedStyle(el).backgroundColor, getComputedStyle(el).zIndex]"
    )
    assert style == ["rgb(10, 125, 79)", "5000"]
    open_chat(page)
    assert box(page.get_by_role("dialog"))["x"] == 40
