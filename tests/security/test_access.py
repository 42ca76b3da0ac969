"""Access: who may open a chat socket, whose data a socket reaches, and who sees staff pages.

The origin matrix runs through the real ASGI application (origin validator, auth middleware,
consumer) with channels' WebsocketCommunicator, and a few cases against a real server process.
Ownership is checked for users and anonymous visitors over every frame that reads or changes a
session, and over the export views and admin actions.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission
from django.test import Client
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from sophie_chat.models import ChatMessage, ChatSession
from tests.security.conftest import SUBPROTOCOL, Site

pytestmark = pytest.mark.django_db(transaction=True)

H = "testserver"
# (origin or None, host, accepted?) and why: the Host is what the page was served from.
ORIGINS: list[tuple[str | None, str, bool, str]] = [
    ("http://testserver", H, True, "same origin"),
    ("http://TESTSERVER", H, True, "host names are case-insensitive (browsers send lowercase)"),
    ("https://testserver", H, True, "TLS ended at a proxy: Host has no port, wss was used"),
    ("http://127.0.0.1:8000", "127.0.0.1:8000", True, "same origin with a port"),
    (None, H, False, "missing"),
    ("http://evil.example", H, False, "foreign"),
    ("http://testserver.evil.com", H, False, "look-alike: our name as a subdomain"),
    ("http://TESTSERVER.EVIL.COM", H, False, "look-alike, uppercase"),
    ("http://evil-testserver", H, False, "look-alike: prefix"),
    ("http://eviltestserver", H, False, "look-alike: glued prefix"),
    ("http://testserver:8080", H, False, "other port"),
    ("http://127.0.0.1:8001", "127.0.0.1:8000", False, "other port, IP host"),
    ("ftp://testserver", H, False, "other scheme"),
    ("ws://testserver", H, False, "WebSocket scheme is not an origin"),
    ("file://", H, False, "file page"),
    ("null", H, False, "opaque origin (sandboxed iframe, file:, data:)"),
    ("http://testserver.", H, False, "trailing dot"),
    ("http://testserver.", "testserver.", False, "trailing dot on both sides"),
    ("http://evil.example@testserver", H, False, "userinfo before our host"),
    ("http://testserver@evil.example", H, False, "userinfo: our name as the user"),
    ("http://testserver/path", H, False, "not an origin: a path"),
    (" http://testserver", H, False, "leading space"),
    ("http://[::1]", H, False, "IPv6 loopback, other host"),
    ("http://[::1]:8000", "[::1]:8000", False, "IPv6 host not in ALLOWED_HOSTS"),
    ("http://[::ffff:127.0.0.1]:8000", "127.0.0.1:8000", False, "IPv4-mapped IPv6 form"),
    ("http://0x7f.0.0.1:8000", "127.0.0.1:8000", False, "hex IPv4 form"),
    ("http://2130706433:8000", "127.0.0.1:8000", False, "integer IPv4 form"),
    ("http://localhost", H, False, "another allowed host, not the page's"),
    ("http://evil.example", "evil.example", False, "Host not in ALLOWED_HOSTS (DNS rebinding)"),
]


@pytest.mark.parametrize(("origin", "host", "accepted", "why"), ORIGINS)
async def test_origin_matrix_at_the_handshake(
    chat: Any, origin: str | None, host: str, accepted: bool, why: str
) -> None:
    socket = await chat(origin=origin, host=host, read_session=False)
    assert socket.connected is accepted, why
    if accepted:
        assert (await socket.until("session"))["type"] == "session"


async def test_two_origin_headers_are_refused(chat: Any) -> None:
    socket = await chat(headers=((b"origin", b"http://evil.example"),), read_session=False)
    assert socket.connected is False


async def test_ipv6_and_allowed_origins_lists(chat: Any, chat_config: Any, settings: Any) -> None:
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "[::1]"]
    assert (await chat(origin="http://[::1]:8000", host="[::1]:8000")).connected
    assert not (await chat(origin="http://[::2]:8000", host="[::1]:8000")).connected
    chat_config(ALLOWED_ORIGINS=["https://shop.example"])
    assert (await chat(origin="https://shop.example", host="ws.internal")).connected
    for origin in (
        "http://shop.example",
        "https://shop.example.evil.com",
        "https://shop.example:444",
    ):
        assert not (await chat(origin=origin, host="ws.internal")).connected, origin


async def _real_handshake(site: Site, origin: str | None) -> int:
    cookie = site.visitor_cookie()
    try:
        ws = await connect(
            site.ws_url,
            origin=origin,  # type: ignore[arg-type]
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            additional_headers={"Cookie": f"sessionid={cookie}"},
            proxy=None,
        )
    except InvalidStatus as refused:
        return refused.response.status_code
    frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
    await ws.close()
    return 101 if frame["type"] == "session" else -1


@pytest.mark.django_db(transaction=False)
async def test_origin_check_on_a_real_server(site: Site) -> None:
    port = site.server.port
    cases = {
        site.origin: 101,
        f"http://localhost:{port}": 403,  # allowed host, but not the one in Host
        f"http://127.0.0.1:{port + 1}": 403,
        f"http://127.0.0.1.evil.example:{port}": 403,
        "null": 403,
        None: 403,
    }
    results = {origin: await _real_handshake(site, origin) for origin in cases}
    assert results == cases


# --- ownership -------------------------------------------------------------------------------


def _session_of(**owner: Any) -> ChatSession:
    return ChatSession.objects.get(**owner)


async def _owner_state(**owner: Any) -> tuple[str, int | None, int]:
    def read() -> tuple[str, int | None, int]:
        session = _session_of(**owner)
        return session.status, session.rating, session.messages.count()

    return await database_sync_to_async(read)()


@pytest.mark.parametrize("a_kind", ["user", "anonymous"])
@pytest.mark.parametrize("b_kind", ["user", "anonymous"])
async def test_another_owner_never_reaches_a_session(
    chat: Any, fake_ai: Any, user_factory: Any, a_kind: str, b_kind: str
) -> None:
    users = [await database_sync_to_async(user_factory)() for _ in range(2)]
    a = await chat(user=users[0] if a_kind == "user" else None)
    await a.turn("segredo-de-a 123")
    await a.send(type="rating", score=5, comment="nota de a")
    await a.until("rated")
    a_owner = {"user": users[0]} if a_kind == "user" else {"visitor_key": a.session_key}
    before = await _owner_state(**a_owner)

    b = await chat(user=users[1] if b_kind == "user" else None)
    assert b.session["session_id"] != a.session["session_id"]
    seen = [json.dumps(b.session)]
    for frame in (
        {"type": "resume", "after_seq": 0},
        {"type": "history", "before_seq": 1000, "limit": 100},
        {"type": "link", "message_seq": 1, "url": "/x"},
        {"type": "rating", "score": 1, "comment": "nota de b"},
        {"type": "close"},
        {"type": "ping"},
    ):
        await b.send(**frame)
    while True:
        frame = await b.recv()
        seen.append(json.dumps(frame))
        if frame["type"] == "pong":
            break
    assert not any("segredo-de-a" in text or "nota de a" in text for text in seen)
    assert await _owner_state(**a_owner) == before  # still active, rated 5, same messages
    # A's socket is unaffected: no "closed" from B's close, and it still chats.
    await a.turn("ainda aqui")
    assert not any(f["type"] == "closed" for f in a.frames)


async def test_logout_in_another_tab_closes_the_open_socket(
    chat: Any, fake_ai: Any, user_factory: Any
) -> None:
    user = await database_sync_to_async(user_factory)()
    socket = await chat(user=user)
    await socket.turn("antes de sair")

    def log_out() -> None:
        client = Client()
        client.cookies["sessionid"] = socket.session_key
        client.logout()  # what the site's logout view does, in another tab

    await database_sync_to_async(log_out)()
    await socket.message("depois de sair")
    assert await socket.closed_with() == 4408
    stored = await database_sync_to_async(
        ChatMessage.objects.filter(content="depois de sair").count
    )()
    assert stored == 0


# --- staff-only pages ------------------------------------------------------------------------

STAFF_URLS = [
    "/chat/dashboard/",
    "/chat/export/sessions.csv",
    "/chat/export/messages.csv",
    "/chat/metrics/",
    "/admin/",
    "/admin/sophie_chat/chatsession/",
    "/admin/sophie_chat/chatmessage/",
    "/admin/sophie_chat/knowledgebaseentry/",
]


def test_staff_pages_refuse_anonymous_and_non_staff(
    user_factory: Any, chat_session_factory: Any, settings: Any
) -> None:
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "METRICS_TOKEN": "metrics-secret"}
    owner = user_factory()
    session = chat_session_factory(user=owner)
    ChatMessage.objects.create(session=session, seq=1, sender="user", content="segredo-do-dono")
    member = user_factory()
    staff_no_perms = user_factory(is_staff=True)
    refused: dict[str, list[int]] = {}
    for who, user in (("anonymous", None), ("member", member)):
        client = Client()
        if user is not None:
            client.force_login(user)
        for url in STAFF_URLS:
            response = client.get(url)
            body = b"".join(response) if response.streaming else response.content
            assert response.status_code in (302, 401, 403), (who, url, response.status_code)
            assert b"segredo-do-dono" not in body
            if response.status_code == 302:
                assert "/login/" in response["Location"], (who, url)
            refused.setdefault(who, []).append(response.status_code)
    # Metrics: a wrong or missing bearer token is refused; the right one works.
    client = Client()
    assert client.get("/chat/metrics/").status_code in (302, 401, 403)
    wrong = client.get("/chat/metrics/", HTTP_AUTHORIZATION="Bearer metrics-secreT")
    assert wrong.status_code in (302, 401, 403)
    right = client.get("/chat/metrics/", HTTP_AUTHORIZATION="Bearer metrics-secret")
    assert right.status_code == 200
    # Staff without model permissions: no admin changelist, so no privacy export or erase.
    client = Client()
    client.force_login(staff_no_perms)
    changelist = "/admin/sophie_chat/chatsession/"
    assert client.get(changelist).status_code == 403
    for action in ("export_owner_data", "erase_owner_data"):
        response = client.post(
            changelist, {"action": action, "_selected_action": [str(session.pk)], "post": "yes"}
        )
        assert response.status_code == 403
        assert b"segredo-do-dono" not in response.content
    assert ChatSession.objects.filter(pk=session.pk).exists()
    # With the view permission only, listing works but the privacy actions still do not run.
    staff_no_perms.user_permissions.add(Permission.objects.get(codename="view_chatsession"))
    client.force_login(staff_no_perms)
    response = client.post(
        changelist,
        {"action": "erase_owner_data", "_selected_action": [str(session.pk)], "post": "yes"},
    )
    assert ChatSession.objects.filter(pk=session.pk).exists()
    assert ChatMessage.objects.filter(session=session).count() == 1
    print(
        f"\nstaff pages: {len(STAFF_URLS)} URLs refused to anonymous {refused['anonymous']}"
        f" and to non-staff {refused['member']}"
    )


@pytest.mark.parametrize("how", ["password_changed", "deactivated"])
async def test_a_user_who_lost_access_can_no_longer_send(
    chat: Any, fake_ai: Any, user_factory: Any, how: str
) -> None:
    """A password change elsewhere ends every other session (Django checks the session's auth
    hash); a deactivated account may not log in. Neither may keep chatting on an open socket."""
    user = await database_sync_to_async(user_factory)()
    socket = await chat(user=user)
    await socket.turn("antes")

    def lose_access() -> None:
        if how == "password_changed":
            user.set_password("a new password")
        else:
            user.is_active = False
        user.save()

    await database_sync_to_async(lose_access)()
    await socket.message("depois")
    assert await socket.closed_with() == 4408
    stored = await database_sync_to_async(ChatMessage.objects.filter(content="depois").count)()
    assert stored == 0


async def test_a_made_up_session_cookie_is_not_an_identity(chat: Any) -> None:
    """Anonymous chats belong to real Django sessions: a cookie the server never issued (a
    guessed or stale key) opens no chat, so no one can pick the visitor key they chat as."""
    socket = await chat(session_key="madeupmadeupmadeupmadeup12345678", read_session=False)
    assert await socket.closed_with() == 4401
