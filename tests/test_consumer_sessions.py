"""Sessions created by the first message: the connect stores nothing, tabs follow, races merge."""
# ruff: noqa: F811 - fixtures imported from tests/conversation/conftest.py are parameters here

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import connection

from sophie_chat import dbunits
from sophie_chat.ai.base import Turn
from sophie_chat.ai.context import gather_sync
from sophie_chat.conversation.fanout import owner_group
from sophie_chat.conversation.types import Owner
from sophie_chat.dbunits import db_unit
from sophie_chat.models import ChatMessage, ChatSession
from tests.conversation.conftest import (  # noqa: F401 - fixtures
    ThreadQueries,
    _fresh_limits,
    chat,
    chat_config,
    fake_ai,
    make_user,
    one_db_thread,
    settle,
)

pytestmark = pytest.mark.django_db(transaction=True)

count_sessions = database_sync_to_async(lambda: ChatSession.objects.count())


@pytest.fixture
def units(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the database units run, in order."""
    names: list[str] = []
    real = dbunits.DatabaseSyncToAsync

    def recording(func: Any, **kwargs: Any) -> Any:
        names.append(func.__name__)
        return real(func, **kwargs)

    monkeypatch.setattr(dbunits, "DatabaseSyncToAsync", recording)
    return names


async def test_a_visitor_who_never_writes_stores_nothing(
    chat: Any, one_db_thread: None, fake_ai: Any
) -> None:
    async with ThreadQueries() as queries:
        c = await chat()
    statements = await db_unit(queries.statements)()
    # The Django session (the cookie's visitor) and the lookup of an active chat session:
    # no INSERT, no read of messages.
    assert len(statements) == 2, statements
    assert not [q for q in statements if "INSERT" in q or "sophie_chat_chatmessage" in q]
    frame = c.session
    assert frame["session_id"] is None
    assert (frame["status"], frame["new"], frame["last_seq"], frame["messages"]) == (
        "active",
        True,
        0,
        [],
    )
    assert (frame["user_type"], frame["has_more"]) == ("anonymous", False)
    await c.send(type="ping")
    await c.until("pong")
    assert await count_sessions() == 0


async def test_a_returning_visitor_connects_in_three_queries(
    chat: Any, one_db_thread: None, fake_ai: Any
) -> None:
    first = await chat()
    await first.turn("oi")
    async with ThreadQueries() as queries:
        again = await chat(session_key=first.session_key)
    statements = await db_unit(queries.statements)()
    # The Django session, the lookup, the last page.
    assert len(statements) == 3, statements
    assert again.session["session_id"] == first.session["session_id"]
    assert [m["seq"] for m in again.session["messages"]] == [1, 2]


async def test_the_first_message_creates_the_session_then_acks_it(
    chat: Any, one_db_thread: None, units: list[str], fake_ai: Any
) -> None:
    c = await chat()
    # The knowledge lookup warm, as in a running worker: it then reads nothing.
    warm = Turn(session_id="", text="eletricista", page={"url": "/servicos/"})
    await db_unit(gather_sync)(warm)
    units.clear()
    async with ThreadQueries() as queries:
        id = await c.message("Como contrato um eletricista?", page={"url": "/servicos/"})
        kinds = []
        while "assistant.done" not in kinds:
            kinds.append((await c.recv())["type"])
        await settle()
    session, ack, start = c.frames[1:4]
    # The session frame first, so that the client knows the session of the ack's seq.
    assert kinds[:3] == ["session", "ack", "assistant.start"]
    assert session["session_id"] is not None
    assert (session["new"], session["last_seq"], session["messages"]) == (True, 0, [])
    assert "notice" not in session
    assert (ack["id"], ack["seq"]) == (id, 1)
    assert (start["seq"], start["reply_to"]) == (2, 1)
    # One unit stores the session, the message and the placeholder (the knowledge lookup runs
    # beside it); then the answer's unit. PostgreSQL runs both writes from the event loop.
    ours = [u for u in units if not u.startswith("__")]  # not ThreadQueries' own
    postgres = connection.vendor == "postgresql"
    writes = [] if postgres else ["_accept_message_sync", "_end_of_turn_sync"]
    assert sorted(ours) == sorted(["gather_sync", *writes]), units
    if postgres:
        assert [s.split()[:2] for s in queries.async_statements] == [["WITH", "s"], ["WITH", "s0"]]
    statements = await db_unit(queries.statements)()
    # No history read: the message, its session and the placeholder are one statement on
    # PostgreSQL (two elsewhere), then the answer's UPDATE and the analytics upsert (one
    # statement on PostgreSQL too).
    expected = 2 if postgres else 4
    assert len(statements) == expected, statements
    stored = await database_sync_to_async(
        lambda: ChatSession.objects.get(pk=session["session_id"])
    )()
    assert stored.context == {
        "page": {"url": "/servicos/", "title": "", "referrer": "", "status": None}
    }


async def test_page_context_sent_before_the_first_message_is_stored_with_it(
    chat: Any, fake_ai: Any, make_user: Any, chat_config: Any
) -> None:
    chat_config(USER_CONTEXT_PROVIDER="tests.conversation.test_manager.profile")
    c = await chat(user=await make_user())
    await c.send(type="page", url="/pedidos/", title="Pedidos", referrer="/", status=200)
    assert await c.nothing(0.2)
    assert await count_sessions() == 0
    await c.turn("onde está meu pedido?")
    page = {"url": "/pedidos/", "title": "Pedidos", "referrer": "/", "status": 200}
    assert fake_ai.turns[-1].page == page
    assert fake_ai.turns[-1].user_context == {"first_name": "Ana", "city": "Recife"}
    stored = await database_sync_to_async(
        lambda: ChatSession.objects.get(pk=c.session["session_id"])
    )()
    assert stored.context == {"user": {"first_name": "Ana", "city": "Recife"}, "page": page}
    assert stored.user_type == "client"


@pytest.mark.parametrize(
    ("frame", "answer"),
    [
        ({"type": "resume", "after_seq": 0}, {"type": "history", "mode": "resume"}),
        ({"type": "history", "before_seq": 10}, {"type": "history", "mode": "page"}),
        ({"type": "rating", "score": 5}, {"type": "error", "code": "not_found"}),
        ({"type": "close"}, {"type": "closed", "session_id": None}),
        ({"type": "stop"}, None),
        ({"type": "link", "message_seq": 1, "url": "https://example.com/"}, None),
        ({"type": "page", "url": "/", "title": "", "referrer": "", "status": 200}, None),
    ],
)
async def test_frames_that_need_a_session_are_answered_without_one(
    chat: Any,
    make_user: Any,
    fake_ai: Any,
    caplog: pytest.LogCaptureFixture,
    frame: dict[str, Any],
    answer: dict[str, Any] | None,
) -> None:
    c = await chat(user=await make_user())
    with caplog.at_level(logging.WARNING):
        await c.send(**frame)
        if answer is None:
            assert await c.nothing(0.3)
        else:
            got = await c.recv()
            assert {k: got.get(k) for k in answer} == answer
            if got["type"] == "history":
                assert (got["messages"], got["has_more"]) == ([], False)
        await c.send(type="ping")
        await c.until("pong")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert await count_sessions() == 0
    # ...and the socket still starts a chat with its first message.
    ack, done = await c.turn("agora sim")
    assert (ack["seq"], done["status"]) == (1, "complete")
    assert c.session["session_id"] is not None


async def test_tabs_open_before_the_first_message_see_the_conversation_live(
    chat: Any, make_user: Any, fake_ai: Any
) -> None:
    fake_ai.delay, fake_ai.words = 0.05, [f"w{i}" for i in range(20)]
    user = await make_user()
    tab1, tab2 = await chat(user=user), await chat(user=user)
    assert tab1.session["session_id"] is tab2.session["session_id"] is None
    id = await tab1.message("primeira mensagem")
    ack = await tab1.until("ack", id=id)
    # The other tab opens the new session: the message (and the answer's placeholder) in its
    # session frame, then the answer live.
    joined = await tab2.until("session")
    assert joined["session_id"] == tab1.session["session_id"]
    assert joined["new"] is False
    assert [(m["seq"], m["id"]) for m in joined["messages"]][:1] == [(ack["seq"], id)]
    done = await tab1.until("assistant.done", seq=2)
    assert (await tab2.until("assistant.done", seq=2))["text"] == done["text"]
    assert [f for f in tab2.frames if f["type"] == "assistant.delta" and f["seq"] == 2]
    # Both know each other now: the second tab's message reaches the first one live.
    ack2, done2 = await tab2.turn("da segunda aba")
    relayed = await tab1.until("assistant.done", seq=done2["seq"])
    assert relayed == done2
    assert any(
        f["type"] == "user.message" and f["message"]["seq"] == ack2["seq"] for f in tab1.frames
    )
    own = [f for f in tab2.frames if f.get("seq") == done2["seq"] and "index" in f]
    seen = [f for f in tab1.frames if f.get("seq") == done2["seq"] and "index" in f]
    assert own == seen
    assert await count_sessions() == 1


async def test_two_tabs_racing_their_first_messages_share_one_session(
    chat: Any, make_user: Any, fake_ai: Any
) -> None:
    user = await make_user()
    tab1, tab2 = await chat(user=user), await chat(user=user)
    ids = [await tab1.message("da aba um"), await tab2.message("da aba dois")]
    acks = [
        await tab1.until("ack", id=ids[0]),
        await tab2.until("ack", id=ids[1]),
    ]
    for tab, ack in ((tab1, acks[0]), (tab2, acks[1])):
        await tab.until("assistant.done", seq=ack["seq"] + 1)
    await settle()
    session_ids = {tab1.session["session_id"], tab2.session["session_id"]}
    assert len(session_ids) == 1
    assert None not in session_ids
    assert sorted(a["seq"] for a in acks) == [1, 3]
    assert await count_sessions() == 1
    rows = await database_sync_to_async(
        lambda: sorted(ChatMessage.objects.filter(sender="user").values_list("seq", "content"))
    )()
    assert [text for _seq, text in rows] in (
        ["da aba um", "da aba dois"],
        ["da aba dois", "da aba um"],
    )


async def test_a_message_after_the_session_expired_elsewhere_moves_other_tabs(
    chat: Any, make_user: Any, fake_ai: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    user = await make_user()
    tab1 = await chat(user=user)
    await tab1.turn("antiga")
    # The second tab joins while the answer streams.
    fake_ai.delay, fake_ai.words = 0.05, [f"w{i}" for i in range(20)]
    old = tab1.session["session_id"]
    tab2 = await chat(user=user)
    assert tab2.session["session_id"] == old
    await database_sync_to_async(
        lambda: ChatSession.objects.filter(pk=old).update(
            last_activity_at=timezone.now() - timedelta(days=2)
        )
    )()
    await tab1.message("ainda aí?")
    fresh = await tab1.until("session")
    assert (fresh["notice"], fresh["new"]) == ("expired", True)
    # The second tab did not know its session had expired: it moves to the new one too.
    moved = await tab2.until("session", session_id=fresh["session_id"])
    assert [m["text"] for m in moved["messages"]][:1] == ["ainda aí?"]
    await tab1.until("assistant.done")
    await tab2.until("assistant.done", seq=2)


def test_the_owner_group_name_hides_the_owner() -> None:
    key = "k" * 32
    name = owner_group(Owner(visitor_key=key))
    assert key not in name
    assert re.fullmatch(r"sophie-chat-owner\.[0-9a-f]{32}", name)
    assert name == owner_group(Owner(visitor_key=key))
    assert name != owner_group(Owner(visitor_key="j" * 32))
    assert owner_group(Owner(user_id=7)) != owner_group(Owner(visitor_key="7"))
    assert "7" not in owner_group(Owner(user_id=7)).split(".")[0]


async def test_a_disconnected_socket_leaves_its_owner_group(chat: Any) -> None:
    from channels.layers import get_channel_layer

    c = await chat()
    layer = get_channel_layer()
    group = owner_group(Owner(visitor_key=c.session_key))
    if hasattr(layer, "groups"):  # the in-memory layer
        assert len(layer.groups.get(group, {})) == 1
    await c.comm.disconnect()
    await asyncio.sleep(0.05)
    if hasattr(layer, "groups"):
        assert not layer.groups.get(group)


async def test_a_tab_logged_out_meanwhile_is_not_shown_a_new_conversation(
    chat: Any, make_user: Any, fake_ai: Any
) -> None:
    from importlib import import_module

    from django.conf import settings

    user = await make_user()
    stale = await chat(user=user)  # this browser logs out; another device writes
    other_device = await chat(user=user)
    store = import_module(settings.SESSION_ENGINE).SessionStore(stale.session_key)
    await database_sync_to_async(store.flush)()
    await other_device.turn("segredo escrito depois")
    seen: list[dict[str, Any]] = []
    while True:
        output = await stale.comm.receive_output(5)
        if output["type"] == "websocket.close":
            break
        seen.append(json.loads(output["text"]))
    assert output["code"] == 4408
    assert "segredo" not in json.dumps(seen)
