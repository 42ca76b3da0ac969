"""ChatConsumer edges: handshake (origin, subprotocol, auth), ownership, and hostile input."""
# ruff: noqa: F811 - fixtures imported from tests/conversation/conftest.py are parameters here

from __future__ import annotations

import json
import uuid
from importlib import import_module
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings

from sophie_chat.models import ChatMessage, ChatSession
from tests.conversation.conftest import (  # noqa: F401 - fixtures
    _fresh_limits,
    anonymous_session,
    chat,
    chat_config,
    fake_ai,
    make_user,
)

pytestmark = pytest.mark.django_db(transaction=True)


count_messages = database_sync_to_async(lambda: ChatMessage.objects.count())


async def test_connect_sends_session_with_subprotocol(
    chat: Any, make_user: Any, fake_ai: Any
) -> None:
    user = await make_user()
    c = await chat(user=user)
    assert c.subprotocol == "sophie-chat.v1"
    assert c.session["type"] == "session"
    # No session is stored until the first message.
    assert c.session["session_id"] is None
    assert (c.session["status"], c.session["new"], c.session["last_seq"]) == ("active", True, 0)
    assert c.session["messages"] == []
    assert c.session["user_type"] == "client"
    assert c.session["limits"]["max_frame_bytes"] == 16384
    await c.turn("oi")
    again = await chat(user=user)
    assert again.session["session_id"] == c.session["session_id"] is not None
    assert again.session["new"] is False


async def test_unknown_subprotocol_only_is_refused(chat: Any) -> None:
    c = await chat(subprotocols=("sophie-chat.v2",), read_session=False)
    assert c.connected is False


async def test_no_subprotocol_is_accepted_without_one(chat: Any) -> None:
    c = await chat(subprotocols=())
    assert c.connected
    assert c.subprotocol is None


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        (None, "testserver"),  # no Origin header
        ("null", "testserver"),
        ("http://evil.test", "testserver"),
        ("http://testserver.evil.test", "testserver"),  # look-alike subdomain
        ("http://eviltestserver", "testserver"),
        ("http://testserver:8080", "testserver"),  # other port
        ("https://testserver", "testserver:80"),  # other scheme's port
        ("http://user@testserver", "testserver"),
        ("http://testserver/path", "testserver"),
        ("http://evil.test", "evil.test"),  # same as Host but not in ALLOWED_HOSTS
        ("ftp://testserver", "testserver"),
    ],
)
async def test_foreign_origin_is_refused_at_handshake(chat: Any, origin: Any, host: str) -> None:
    c = await chat(origin=origin, host=host, read_session=False)
    assert c.connected is False


@pytest.mark.parametrize(
    ("origin", "host"),
    [("http://testserver", "testserver"), ("http://localhost:8000", "localhost:8000")],
)
async def test_same_origin_on_allowed_host_connects(chat: Any, origin: str, host: str) -> None:
    c = await chat(origin=origin, host=host)
    assert c.connected


async def test_allowed_origins_setting_is_exact(chat: Any, chat_config: Any) -> None:
    chat_config(ALLOWED_ORIGINS=["https://www.example.com", "http://localhost:3000"])
    assert (await chat(origin="https://www.example.com")).connected
    assert (await chat(origin="HTTPS://WWW.EXAMPLE.COM:443")).connected
    assert (await chat(origin="http://localhost:3000")).connected
    for origin in (
        "http://testserver",  # same as Host, but the list decides now
        "https://example.com",
        "https://www.example.com.evil.test",
        "http://www.example.com",
        "https://www.example.com:8443",
    ):
        assert not (await chat(origin=origin, read_session=False)).connected, origin


async def test_anonymous_needs_a_session_cookie(chat: Any) -> None:
    c = await chat(cookie=False, read_session=False)
    assert await c.closed_with() == 4401


async def test_anonymous_refused_when_disabled(chat: Any, chat_config: Any) -> None:
    chat_config(ALLOW_ANONYMOUS=False)
    c = await chat(read_session=False)
    assert await c.closed_with() == 4401


async def test_anonymous_visitor_keeps_their_session(chat: Any, fake_ai: Any) -> None:
    key = await anonymous_session()
    first = await chat(session_key=key)
    assert first.session["user_type"] == "anonymous"
    await first.turn("oi")
    second = await chat(session_key=key)
    assert second.session["session_id"] == first.session["session_id"] is not None
    other = await chat()
    await other.turn("oi")
    assert other.session["session_id"] != first.session["session_id"]


async def test_user_b_never_reaches_user_a_session(chat: Any, make_user: Any, fake_ai: Any) -> None:
    a, b = await make_user(), await make_user()
    chat_a = await chat(user=a)
    await chat_a.turn("segredo de A")
    a_id = chat_a.session["session_id"]
    chat_b = await chat(user=b)
    assert chat_b.session["session_id"] != a_id
    # No frame can name a session: each of these is refused and stores nothing.
    for frame in (
        {"type": "resume", "after_seq": 0, "session_id": a_id},
        {"type": "history", "before_seq": 99, "session_id": a_id},
        {"type": "rating", "score": 1, "session_id": a_id},
        {"type": "close", "session_id": a_id},
        {"type": "message", "id": str(uuid.uuid4()), "text": "x", "session_id": a_id},
    ):
        await chat_b.send(**frame)
        assert (await chat_b.until("error"))["code"] == "invalid"
    # What B can ask for is B's own session only.
    await chat_b.send(type="resume", after_seq=0)
    assert (await chat_b.until("history"))["messages"] == []
    await chat_b.send(type="history", before_seq=1000)
    assert (await chat_b.until("history"))["messages"] == []
    await chat_b.send(type="close")
    assert (await chat_b.until("closed"))["session_id"] != a_id
    # ...and so is what B writes: into a session of B's.
    await chat_b.turn("de B")
    assert chat_b.session["session_id"] not in (None, a_id)
    await chat_b.send(type="resume", after_seq=0)
    assert [m["text"] for m in (await chat_b.until("history"))["messages"]][:1] == ["de B"]
    session_a = await database_sync_to_async(ChatSession.objects.get)(pk=a_id)
    assert session_a.status == "active"
    assert session_a.rating is None
    assert await database_sync_to_async(lambda: session_a.messages.count())() == 2
    # An anonymous visitor with a fresh cookie gets a new session, never A's.
    anonymous = await chat()
    await anonymous.turn("oi")
    assert anonymous.session["session_id"] not in (None, a_id)


BAD_FRAMES: list[tuple[str, str]] = [
    ("{not json", "invalid"),
    (json.dumps({"type": "hack"}), "invalid"),
    (json.dumps({"type": "message", "id": "1", "text": "x"}), "invalid"),
    (json.dumps({"type": "message", "id": str(uuid.uuid4()), "text": "x" * 2001}), "too_long"),
    (json.dumps({"type": "message", "id": str(uuid.uuid4()), "text": " \x00 "}), "invalid"),
    (f'{{"type":"message","id":"{uuid.uuid4()}","text":"\\udc00"}}', "invalid"),
    ('{"type":"resume","after_seq":NaN}', "invalid"),
    ("[" * 5000 + "]" * 5000, "invalid"),
    ("x" * 20000, "frame_too_large"),
    ("é" * 9000, "frame_too_large"),  # 9000 characters, 18000 bytes
    # `$` would match before the final newline; the id must be a UUID and nothing more.
    (json.dumps({"type": "message", "id": f"{uuid.uuid4()}\n", "text": "x"}), "invalid"),
]


async def test_every_bad_input_gets_an_error_and_stores_nothing(
    chat: Any, make_user: Any, fake_ai: Any
) -> None:
    c = await chat(user=await make_user())
    for raw, code in BAD_FRAMES:
        await c.send_raw(text=raw)
        assert (await c.until("error"))["code"] == code, raw
    await c.send_raw(data=b'{"type": "ping"}')  # binary frames are refused
    assert (await c.until("error"))["code"] == "invalid"
    assert await count_messages() == 0
    # ...and the socket still serves.
    await c.send(type="ping")
    assert (await c.recv())["type"] == "pong"
    _ack, done = await c.turn("ainda aqui?")
    assert done["status"] == "complete"


async def test_error_messages_follow_the_visitor_language(chat: Any) -> None:
    en = await chat(headers=((b"accept-language", b"en-US,en;q=0.9"),))
    await en.send_raw(text="{")
    assert (await en.until("error"))["message"] == "This message could not be understood."
    pt = await chat(headers=((b"accept-language", b"pt-BR"),))
    await pt.send_raw(text="{")
    assert (await pt.until("error"))["message"] != "This message could not be understood."


async def test_twenty_invalid_frames_in_a_row_close_4400(chat: Any) -> None:
    c = await chat()
    for _ in range(19):
        await c.send_raw(text="nope")
        assert (await c.until("error"))["code"] == "invalid"
    await c.send(type="ping")  # a valid frame resets the count
    await c.until("pong")
    for _ in range(19):
        await c.send_raw(text="nope")
        await c.until("error")
    await c.send_raw(text="nope")
    assert await c.closed_with() == 4400


async def test_repeated_oversized_frames_close_4413(chat: Any) -> None:
    c = await chat()
    for _ in range(3):
        await c.send_raw(text="x" * 17000)
    assert await c.closed_with() == 4413


async def test_frame_limit_comes_from_settings(chat: Any, chat_config: Any) -> None:
    chat_config(MAX_FRAME_BYTES=200)
    c = await chat()
    await c.message("x" * 300)
    assert (await c.until("error"))["code"] == "frame_too_large"


async def test_page_and_link_frames_are_silent(chat: Any, fake_ai: Any) -> None:
    c = await chat()
    await c.send(type="page", url="/pedidos/", title="Pedidos", referrer="/", status=200)
    await c.send(type="link", message_seq=1, url="https://example.com/x")
    assert await c.nothing(0.3)
    await c.turn("oi")
    assert fake_ai.turns[-1].page == {
        "url": "/pedidos/",
        "title": "Pedidos",
        "referrer": "/",
        "status": 200,
    }


async def test_consumer_checks_the_origin_itself_when_mounted_without_the_validator() -> None:
    """A site that mounts websocket_urlpatterns by hand and forgets ChatOriginValidator."""
    from channels.auth import AuthMiddlewareStack
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from sophie_chat.routing import websocket_urlpatterns

    bare = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
    key = await anonymous_session()
    for origin, allowed in (("http://evil.test", False), ("http://testserver", True)):
        comm = WebsocketCommunicator(
            bare,
            "/ws/sophie-chat/",
            headers=[
                (b"host", b"testserver"),
                (b"origin", origin.encode()),
                (b"cookie", f"sessionid={key}".encode()),
            ],
        )
        connected, _ = await comm.connect(timeout=5)
        assert connected is allowed, origin
        await comm.disconnect()


async def test_user_authenticated_without_a_django_session_is_not_logged_out(
    user_factory: Any, fake_ai: Any
) -> None:
    """Sites that authenticate sockets with their own token middleware have no session."""
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from sophie_chat.routing import websocket_urlpatterns

    user = await database_sync_to_async(user_factory)()

    def token_auth(inner: Any) -> Any:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> Any:
            return await inner({**scope, "user": user}, receive, send)

        return app

    comm = WebsocketCommunicator(
        token_auth(URLRouter(websocket_urlpatterns)),
        "/ws/sophie-chat/",
        headers=[(b"host", b"testserver"), (b"origin", b"http://testserver")],
    )
    connected, _ = await comm.connect(timeout=5)
    assert connected
    assert (await comm.receive_json_from(timeout=5))["type"] == "session"
    await comm.send_json_to({"type": "message", "id": str(uuid.uuid4()), "text": "olá"})
    kinds = []
    while "assistant.done" not in kinds:
        kinds.append((await comm.receive_json_from(timeout=5))["type"])
    assert kinds[:2] == ["session", "ack"]  # the first message created the session
    await comm.send_json_to({"type": "history", "before_seq": 3})
    assert (await comm.receive_json_from(timeout=5))["type"] == "history"
    await comm.disconnect()


async def test_the_socket_user_is_loaded_on_the_chat_database_threads(
    monkeypatch: pytest.MonkeyPatch, user_factory: Any
) -> None:
    # Channels' AuthMiddleware loads it on the one thread it shares between every database call
    # of the worker; a burst of connects would queue there.
    import threading

    from asgiref.sync import sync_to_async
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    from sophie_chat import auth

    user = await sync_to_async(user_factory)()
    seen: list[str] = []
    real = auth.get_user.func

    def spy(scope: Any) -> Any:
        seen.append(threading.current_thread().name)
        return real(scope)

    monkeypatch.setattr(auth, "_get_user", auth.db_unit(spy))
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store.update(
        {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0],
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
    )
    await sync_to_async(store.save)()
    scope: dict[str, Any] = {"type": "websocket", "session": store}
    middleware = auth.PooledAuthMiddleware(lambda *a: None)
    middleware.populate_scope(scope)
    await middleware.resolve_scope(scope)
    assert scope["user"].pk == user.pk
    assert len(seen) == 1
    assert seen[0].startswith("sophie-db")
