"""Every page of the example marketplace renders, for visitors, clients and providers."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

# What {% sophie_chat_widget %} renders in base.html: the chat's WebSocket address.
WIDGET = 'data-ws-path="/ws/sophie-chat/"'

PUBLIC_PAGES = [
    "/",
    "/categorias/",
    "/categorias/limpeza/",
    "/servicos/",
    "/servicos/?categoria=limpeza&cidade=S%C3%A3o+Paulo&q=faxina",
    "/servicos/diarista-residencial/",
    "/servicos/passadeira/",
    "/seja-prestador/",
    "/como-funciona/",
    "/entrar/",
    "/senha/",
]


def _client_for(who: str, market: dict[str, Any]) -> Client:
    client = Client()
    if who != "anonymous":
        client.force_login(market[who])
    return client


@pytest.mark.parametrize("who", ["anonymous", "client", "provider"])
def test_public_pages_render_with_the_site_chrome(who: str, market: dict[str, Any]) -> None:
    client = _client_for(who, market)
    for url in PUBLIC_PAGES:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert 'id="a11y-button"' in html, url
        assert WIDGET in html, url
        assert '<html lang="pt-br">' in html, url
        assert "base.html" in [t.name for t in response.templates], url


@pytest.mark.parametrize("url", ["/minhas-contratacoes/", "/painel/"])
def test_account_pages_ask_visitors_to_log_in(url: str, market: dict[str, Any]) -> None:
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/entrar/?next={url}"


def test_my_bookings_lists_the_clients_bookings(market: dict[str, Any]) -> None:
    response = _client_for("client", market).get("/minhas-contratacoes/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Diarista: limpeza residencial completa" in html
    assert "R$ 180,00 por diária" in html
    assert "Confirmada" in html


def test_provider_dashboard_is_for_providers(market: dict[str, Any]) -> None:
    response = _client_for("provider", market).get("/painel/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Passadeira de roupas" in html
    assert "R$ 1.250,50 por projeto" in html
    assert "Olá, Carlos" in html
    # A client is sent to the "become a provider" page instead.
    response = _client_for("client", market).get("/painel/")
    assert response.status_code == 302
    assert response["Location"] == "/seja-prestador/"


def test_service_page_shows_price_availability_and_book_button(market: dict[str, Any]) -> None:
    html = Client().get("/servicos/diarista-residencial/").content.decode()
    assert "R$ 180,00" in html
    assert "por diária" in html
    assert "Seg a sáb, 8h às 17h" in html
    assert 'id="book-button"' in html
    assert ">Contratar<" in html
    # A provider who takes no bookings has no button.
    html = Client().get("/servicos/passadeira/").content.decode()
    assert 'id="book-button"' not in html


def test_service_list_filters(market: dict[str, Any]) -> None:
    client = Client()
    html = client.get("/servicos/?q=faxina").content.decode()
    assert "Diarista" in html
    assert "Passadeira" not in html
    html = client.get("/servicos/?cidade=Rio+de+Janeiro").content.decode()
    assert "Passadeira" in html
    assert "Diarista" not in html
    html = client.get("/servicos/?categoria=outra").content.decode()
    assert "Diarista" not in html
    assert "Nenhum serviço corresponde" in html


def test_pages_speak_english_when_chosen(market: dict[str, Any]) -> None:
    client = Client()
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert response.status_code == 302
    html = client.get("/servicos/diarista-residencial/").content.decode()
    assert '<html lang="en">' in html
    assert ">Book<" in html
    assert "per day" in html


def test_booking_a_service(market: dict[str, Any]) -> None:
    from marketplace.models import Booking

    client = _client_for("client", market)
    url = "/servicos/diarista-residencial/contratar/"
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    response = client.post(url, {"date": tomorrow.isoformat(), "notes": "Tenho um gato."})
    assert response.status_code == 302
    assert response["Location"] == "/minhas-contratacoes/"
    booking = Booking.objects.get(client=market["client"], date=tomorrow)
    assert booking.status == "requested"
    assert booking.notes == "Tenho um gato."
    # A date in the past is refused, on the service page, with the error.
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    response = client.post(url, {"date": yesterday.isoformat()})
    assert response.status_code == 400
    assert "Escolha hoje ou uma data futura." in response.content.decode()
    # Visitors log in first, then come back to the service page.
    response = Client().post(url, {"date": tomorrow.isoformat()})
    assert response.status_code == 302
    assert response["Location"] == "/entrar/?next=/servicos/diarista-residencial/"


def test_cancelling_a_booking(market: dict[str, Any], user_factory: Any) -> None:
    booking = market["booking"]
    url = f"/minhas-contratacoes/{booking.pk}/cancelar/"
    # Someone else's booking does not exist for them.
    stranger = Client()
    stranger.force_login(user_factory(username="mallory"))
    assert stranger.post(url).status_code == 404
    booking.refresh_from_db()
    assert booking.status == "confirmed"

    response = _client_for("client", market).post(url, follow=True)
    assert response.status_code == 200
    booking.refresh_from_db()
    assert booking.status == "cancelled"
    assert "Contratação cancelada sem custo" in response.content.decode()


def test_404_page_extends_the_site(market: dict[str, Any]) -> None:
    for url in ["/nao-existe/", "/servicos/servico-que-saiu-do-ar/"]:
        response = Client().get(url)
        assert response.status_code == 404, url
        names = [t.name for t in response.templates]
        assert names[:2] == ["404.html", "base.html"], url
        html = response.content.decode()
        assert "Não encontramos esta página" in html
        assert 'id="a11y-button"' in html
        assert WIDGET in html
        assert 'action="/servicos/"' in html  # the search box


def test_404_page_also_with_debug_on(market: dict[str, Any], settings: Any) -> None:
    # Django would show its technical page; the demo keeps its own (the chat lives there).
    settings.DEBUG = True
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "marketplace.middleware.NotFoundPageMiddleware"]
    for url in ["/nao-existe/", "/servicos/servico-que-saiu-do-ar/"]:
        response = Client().get(url)
        assert response.status_code == 404, url
        assert "Não encontramos esta página" in response.content.decode(), url
    # Without the trailing slash, APPEND_SLASH still redirects first.
    assert Client().get("/servicos").status_code == 301


def test_500_page(rf: Any) -> None:
    from marketplace.views import server_error

    response = server_error(rf.get("/"))
    assert response.status_code == 500
    assert "Algo deu errado do nosso lado" in response.content.decode()
