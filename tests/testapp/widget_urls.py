"""Pages for the widget's browser tests: two ordinary pages, an error page and a hostile one."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

PAGES = {
    "home": ("Início", "other", "Ir para outra página"),
    "other": ("Outra página", "home", "Voltar ao início"),
    "hostile": ("Página com CSS agressivo", "home", "Início"),
    "missing": ("Página não encontrada", "home", "Início"),
}


def page(request: HttpRequest, name: str = "home") -> HttpResponse:
    title, next_name, next_label = PAGES[name]
    status = 404 if name == "missing" else 200
    context = {
        "title": title,
        "next_url": f"/widget-test/{next_name}/",
        "next_label": next_label,
        "hostile": name == "hostile",
        "status": status if status != 200 else None,
        "sophie_chat_status": status if status != 200 else None,
    }
    return render(request, "widget_test/page.html", context, status=status)


urlpatterns = [
    path("", page, name="widget_test_home"),
    path("<slug:name>/", page, name="widget_test_page"),
]
