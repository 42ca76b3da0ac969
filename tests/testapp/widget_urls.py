"""Pages for the widget's browser tests: ordinary pages, an error page, a hostile one and one
under a strict Content Security Policy."""

from __future__ import annotations

import secrets

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

PAGES = {
    "home": ("Início", "other", "Ir para outra página"),
    "other": ("Outra página", "home", "Voltar ao início"),
    "hostile": ("Página com CSS agressivo", "home", "Início"),
    "missing": ("Página não encontrada", "home", "Início"),
    "csp": ("Página com CSP estrita", "home", "Início"),
}


def page(request: HttpRequest, name: str = "home") -> HttpResponse:
    title, next_name, next_label = PAGES[name]
    status = 404 if name == "missing" else 200
    if name == "csp":
        # As django-csp does: a fresh nonce on the request, the policy on the response.
        request.csp_nonce = secrets.token_urlsafe(16)  # type: ignore[attr-defined]
    context = {
        "title": title,
        "next_url": f"/widget-test/{next_name}/",
        "next_label": next_label,
        "hostile": name == "hostile",
        "csp": name == "csp",
        "status": status if status != 200 else None,
        "sophie_chat_status": status if status != 200 else None,
    }
    response = render(request, "widget_test/page.html", context, status=status)
    if name == "csp":
        response["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'nonce-{request.csp_nonce}'; style-src 'self'; "  # type: ignore[attr-defined]
            "connect-src 'self'; img-src 'self'"
        )
    return response


urlpatterns = [
    path("", page, name="widget_test_home"),
    path("<slug:name>/", page, name="widget_test_page"),
]
