from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.template import Context, Template
from django.test import RequestFactory, override_settings
from django.utils import translation
from django.utils.html import escape

from sophie_chat.widget import contrast_ratio, widget_html
from sophie_chat.widget_strings import interface_strings

pytestmark = pytest.mark.django_db

ATTRS = (
    ' data-ws-path="/ws/sophie-chat/" data-css="/static/sophie_chat/widget.css"'
    ' data-language="{lang}" data-assistant-name="Sophie" data-position="bottom-right"'
    ' data-z-index="999" data-offset-bottom="88" data-offset-side="24"'
    ' data-primary-color="#5b2bd6" data-text-color="#ffffff" data-max-length="2000"'
    ' data-support="{{}}"'
)


def expected(lang: str = "pt-br", extra: str = "", nonce: str = "") -> str:
    with translation.override(lang):
        strings = json.dumps(
            interface_strings("Sophie"), separators=(",", ":"), sort_keys=True, ensure_ascii=False
        )
    nonce_attr = f' nonce="{nonce}"' if nonce else ""
    return (
        f'<sophie-chat id="sophie-chat"{ATTRS.format(lang=lang)}'
        f' data-strings="{escape(strings)}"{extra}></sophie-chat>\n'
        f'<script type="module" src="/static/sophie_chat/sophie-chat.js"{nonce_attr}></script>'
    )


def make_request(user: Any = None) -> HttpRequest:
    request = RequestFactory().get("/")
    SessionMiddleware(lambda r: HttpResponse()).process_request(request)
    request.user = user or AnonymousUser()
    return request


def render(request: HttpRequest | None, template: str = "", **ctx: Any) -> str:
    source = "{% load sophie_chat %}" + (template or "{% sophie_chat_widget %}")
    return Template(source).render(Context({"request": request, **ctx}))


def test_renders_exact_html() -> None:
    with translation.override("pt-br"):
        html = render(make_request())
    assert html == expected("pt-br")


def test_follows_the_active_language() -> None:
    with translation.override("en"):
        html = render(make_request())
    assert html == expected("en")
    assert "&quot;send&quot;:&quot;Send&quot;" in html


def test_strings_are_translated_to_portuguese() -> None:
    with translation.override("pt-br"):
        strings = interface_strings("Sophie")
    assert strings["send"] == "Enviar"
    assert strings["open"] == "Abrir o chat com Sophie"
    assert all(value.strip() for value in strings.values())


def test_csp_nonce_goes_on_the_module_script() -> None:
    request = make_request()
    request.csp_nonce = "n0nc3"  # type: ignore[attr-defined]
    with translation.override("pt-br"):
        html = render(request)
    assert html == expected("pt-br", nonce="n0nc3")


def test_csp_nonce_from_the_context() -> None:
    with translation.override("pt-br"):
        html = render(make_request(), csp_nonce="ctx")
    assert html == expected("pt-br", nonce="ctx")


def test_status_from_the_context_variable_and_the_argument() -> None:
    with translation.override("pt-br"):
        from_context = render(make_request(), sophie_chat_status=404)
        from_argument = render(make_request(), "{% sophie_chat_widget status=500 %}")
    assert from_context == expected("pt-br", extra=' data-page-status="404"')
    assert from_argument == expected("pt-br", extra=' data-page-status="500"')


def test_anonymous_visitor_gets_a_session_cookie() -> None:
    request = make_request()
    assert request.session.session_key is None
    render(request)
    assert request.session.session_key
    response = SessionMiddleware(lambda r: HttpResponse()).process_response(request, HttpResponse())
    assert response.cookies["sessionid"].value == request.session.session_key


def test_existing_session_is_left_alone() -> None:
    request = make_request()
    request.session["x"] = 1
    request.session.save()
    key = request.session.session_key
    request.session.modified = False
    render(request)
    assert request.session.session_key == key
    assert request.session.modified is False


@override_settings(CHAT_CONFIG={"ALLOW_ANONYMOUS": False})
def test_anonymous_chat_off_renders_nothing_for_visitors(user_factory: Any) -> None:
    assert render(make_request()) == ""
    with translation.override("pt-br"):
        assert render(make_request(user_factory())) == expected("pt-br")


@override_settings(
    CHAT_CONFIG={
        "ASSISTANT_NAME": 'Ana "<b>"',
        "MAX_MESSAGE_LENGTH": 500,
        "WIDGET": {"position": "bottom-left", "z_index": 5000, "primary_color": "#004488"},
        "SUPPORT_CONTACT": {"email": "ajuda@example.com", "whatsapp": "+55 11 99999-0000"},
    }
)
def test_configuration_is_escaped_into_data_attributes() -> None:
    html = widget_html(make_request())
    assert 'data-assistant-name="Ana &quot;&lt;b&gt;&quot;"' in html
    assert 'data-position="bottom-left"' in html
    assert 'data-z-index="5000"' in html
    assert 'data-primary-color="#004488"' in html
    assert 'data-offset-bottom="88"' in html  # unset keys keep their defaults
    assert 'data-max-length="500"' in html
    support = {"email": "ajuda@example.com", "whatsapp": "+55 11 99999-0000"}
    encoded = json.dumps(support, separators=(",", ":")).replace('"', "&quot;")
    assert f'data-support="{encoded}"' in html
    assert "<b>" not in html.split("</sophie-chat>")[0]


def test_without_a_request_the_widget_still_renders() -> None:
    with translation.override("pt-br"):
        assert render(None) == expected("pt-br")


def test_default_colours_meet_wcag_aa() -> None:
    assert contrast_ratio("#ffffff", "#5b2bd6") >= 4.5
    assert contrast_ratio("#fff", "#fff") == 1.0
    assert contrast_ratio("white", "#000") is None
