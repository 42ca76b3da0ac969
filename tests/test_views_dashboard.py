from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections
from django.test import AsyncClient, Client
from django.urls import reverse

from sophie_chat.analytics.demo import build_demo_chats
from sophie_chat.models import ChatMessage, ChatSession

pytestmark = pytest.mark.django_db

DASHBOARD = "/chat/dashboard/"
SESSIONS_CSV = "/chat/export/sessions.csv"
MESSAGES_CSV = "/chat/export/messages.csv"


@pytest.fixture
def staff_client(client: Client, user_factory: Callable[..., Any]) -> Client:
    client.force_login(user_factory(is_staff=True))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def demo(db: None) -> dict[str, int]:
    return build_demo_chats(sessions=40, messages_per_session=6, days=10)


def test_urls_are_named() -> None:
    assert reverse("sophie_chat:dashboard") == DASHBOARD
    assert reverse("sophie_chat:export_sessions") == SESSIONS_CSV
    assert reverse("sophie_chat:export_messages") == MESSAGES_CSV
    assert reverse("sophie_chat:metrics") == "/chat/metrics/"


@pytest.mark.parametrize("url", [DASHBOARD, SESSIONS_CSV, MESSAGES_CSV])
def test_anonymous_visitors_are_sent_to_the_login(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


@pytest.mark.parametrize("url", [DASHBOARD, SESSIONS_CSV, MESSAGES_CSV])
def test_users_who_are_not_staff_are_refused(
    client: Client, user_factory: Callable[..., Any], url: str
) -> None:
    client.force_login(user_factory())
    assert client.get(url).status_code == 403


def test_dashboard_shows_the_figures(staff_client: Client, demo: dict[str, int]) -> None:
    response = staff_client.get(DASHBOARD)
    assert response.status_code == 200
    html = response.content.decode()
    data = response.context["data"]
    assert data["sessions"] == 40
    assert data["messages"] == demo["messages"]
    assert sum(data["sources"].values()) == demo["messages"] // 2
    assert data["response_p50"] <= data["response_p95"]
    assert data["ttft_p50"] is not None
    for title in ("Active now", "Cache hit rate", "Fallback rate", "Escalation rate"):
        assert title in html
    assert html.count("<svg") == 6
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html


def test_dashboard_speaks_portuguese(staff_client: Client) -> None:
    html = staff_client.get(DASHBOARD, HTTP_ACCEPT_LANGUAGE="pt-br").content.decode()
    assert 'lang="pt-br"' in html
    assert "Taxa de acerto do cache" in html
    assert "Principais perguntas sem resposta" in html


def test_dashboard_filters_by_user_type_and_dates(
    staff_client: Client, chat_session_factory: Callable[..., Any]
) -> None:
    chat_session_factory(user_type="client")
    chat_session_factory(user_type="provider")
    chat_session_factory(user_type="provider")
    response = staff_client.get(DASHBOARD, {"user_type": "provider"})
    assert response.context["data"]["sessions"] == 2
    response = staff_client.get(DASHBOARD, {"start": "2001-01-01", "end": "2001-01-31"})
    assert response.context["data"]["sessions"] == 0
    assert len(response.context["data"]["sessions_per_day"]) == 31


def test_bad_filters_show_an_error_and_fall_back(staff_client: Client) -> None:
    response = staff_client.get(DASHBOARD, {"start": "2024-05-10", "end": "2024-05-01"})
    assert response.status_code == 200
    assert "start date must not be after" in response.content.decode()
    assert len(response.context["data"]["sessions_per_day"]) == 30


def test_unanswered_questions_are_masked(
    staff_client: Client, chat_session_factory: Callable[..., Any]
) -> None:
    session = chat_session_factory(status="closed", rating=1)
    ChatMessage.objects.create(
        session=session, seq=1, sender="user", content="meu CPF 123.456.789-09 sumiu"
    )
    ChatMessage.objects.create(
        session=session, seq=2, sender="assistant", content="...", metadata={"source": "fallback"}
    )
    unanswered = staff_client.get(DASHBOARD).context["data"]["unanswered"]
    assert unanswered == [
        {"text": "meu CPF [cpf] sumiu", "count": 2, "reasons": {"fallback": 1, "low_rating": 1}}
    ]


def _read_csv(response: Any) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


def test_sessions_export(staff_client: Client, demo: dict[str, int]) -> None:
    response = staff_client.get(SESSIONS_CSV)
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    rows = _read_csv(response)
    assert rows[0][:3] == ["session_id", "created_at", "last_activity_at"]
    assert len(rows) == 41
    header = rows[0]
    resolved = {row[header.index("resolved")] for row in rows[1:]}
    assert resolved <= {"yes", "no", ""}


def test_messages_export_filters_escapes_and_masks(
    staff_client: Client, chat_session_factory: Callable[..., Any]
) -> None:
    provider = chat_session_factory(user_type="provider")
    client_session = chat_session_factory(user_type="client")
    ChatMessage.objects.create(
        session=provider, seq=1, sender="user", content='=HYPERLINK("http://x") +55 (11) 91234-5678'
    )
    ChatMessage.objects.create(session=provider, seq=2, sender="user", content="-1 ou @mim\tok")
    ChatMessage.objects.create(session=client_session, seq=1, sender="user", content="não listar")
    rows = _read_csv(staff_client.get(MESSAGES_CSV, {"user_type": "provider"}))
    texts = [row[rows[0].index("text")] for row in rows[1:]]
    assert texts == ['\'=HYPERLINK("http://x") [phone]', "'-1 ou @mim\tok"]


def test_semicolon_delimiter(
    staff_client: Client, chat_session_factory: Callable[..., Any]
) -> None:
    chat_session_factory()
    body = b"".join(
        staff_client.get(SESSIONS_CSV, {"delimiter": "semicolon"}).streaming_content
    ).decode()
    assert body.splitlines()[0].startswith("\ufeffsession_id;created_at;")


# The ASGI handler reaches the database from another thread: the data must be committed.
@pytest.mark.django_db(transaction=True)
async def test_export_streams_asynchronously_under_asgi(
    async_client: AsyncClient, user_factory: Callable[..., Any], demo: dict[str, int]
) -> None:
    from asgiref.sync import sync_to_async

    user = await sync_to_async(user_factory)(is_staff=True)
    await async_client.aforce_login(user)
    response = await async_client.get(MESSAGES_CSV)
    assert response.status_code == 200
    assert response.is_async
    chunks = [chunk async for chunk in response.streaming_content]
    assert len(chunks) > 1
    lines = b"".join(chunks).decode().splitlines()
    assert len(lines) == demo["messages"] + 1
    # The test client keeps connections open after a request; close the one of the thread
    # that served it, or PostgreSQL refuses to drop the test database.
    await sync_to_async(connections.close_all)()


def test_metrics_endpoint(client: Client, settings: Any, user_factory: Callable[..., Any]) -> None:
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "METRICS_TOKEN": "s3cret"}
    assert client.get("/chat/metrics/").status_code == 401
    assert client.get("/chat/metrics/", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    response = client.get("/chat/metrics/", HTTP_AUTHORIZATION="Bearer s3cret")
    assert response.status_code == 200
    assert "sophie_chat_active_sessions" in response.content.decode()
    client.force_login(user_factory())
    assert client.get("/chat/metrics/").status_code == 401
    client.force_login(user_factory(is_staff=True))
    assert client.get("/chat/metrics/").status_code == 200


def test_metrics_without_a_token_are_for_staff_only(client: Client) -> None:
    assert client.get("/chat/metrics/", HTTP_AUTHORIZATION="Bearer None").status_code == 401
    assert client.get("/chat/metrics/", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_active_sessions_gauge(client: Client, settings: Any, chat_session_factory: Any) -> None:
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "METRICS_TOKEN": "t"}
    chat_session_factory()
    chat_session_factory(status=ChatSession.Status.CLOSED)
    body = client.get("/chat/metrics/", HTTP_AUTHORIZATION="Bearer t").content.decode()
    assert re.search(r"^sophie_chat_active_sessions 1\.0$", body, re.M)


def test_admin_sessions_list_links_to_the_dashboard(admin_client: Client) -> None:
    html = admin_client.get("/admin/sophie_chat/chatsession/").content.decode()
    assert f'href="{DASHBOARD}"' in html


def test_dashboard_costs_a_fixed_number_of_queries(
    staff_client: Client, demo: dict[str, int], django_assert_max_num_queries: Any
) -> None:
    # Sessions, auth and 13-15 aggregate queries, whatever the number of chats.
    with django_assert_max_num_queries(20):
        staff_client.get(DASHBOARD)
    build_demo_chats(sessions=40, messages_per_session=6, days=10, seed=3)
    with django_assert_max_num_queries(20):
        staff_client.get(DASHBOARD)
