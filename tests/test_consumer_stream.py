"""Chat turns end to end: idempotent store, streaming, stop, resume after a drop, tabs, costs."""
# ruff: noqa: F811 - fixtures imported from tests/conversation/conftest.py are parameters here

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta
from importlib import import_module
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import OperationalError, connection
from django.utils import timezone

from sophie_chat.conversation import service
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

#: SQL statements of one chat turn (connect excluded), BEGIN/COMMIT/SAVEPOINT not counted:
#: login check 2 (the session, then the user for its auth hash and is_active), UPDATE..RETURNING
#: 1, INSERT of both rows 1, model history 1, final UPDATE 1, and the analytics recorder's
#: upsert 1 (2 on an escalating turn). On PostgreSQL the UPDATE, INSERT and history read are one
#: statement, and so are the final UPDATE and the upsert (run from the event loop).
PORTABLE_TURN_QUERIES = 7
POSTGRES_TURN_QUERIES = 4


count_rows = database_sync_to_async(lambda: ChatMessage.objects.count())


@database_sync_to_async
def rows(session_id: str) -> list[tuple[int, str, str, str]]:
    return [
        (m.seq, m.sender, m.content, (m.metadata or {}).get("status", ""))
        for m in ChatMessage.objects.filter(session_id=session_id).order_by("seq")
    ]


async def test_same_message_three_times_is_stored_and_answered_once(
    chat: Any, make_user: Any, fake_ai: Any
) -> None:
    user = await make_user()
    c = await chat(user=user)
    id = str(uuid.uuid4())
    await c.message("oi", id=id)
    first = await c.until("ack", id=id)
    await c.until("assistant.done")
    await c.message("oi", id=id)  # same socket
    assert (await c.until("ack", id=id))["seq"] == first["seq"]
    other = await chat(user=user)  # after a "reconnect"
    await other.message("oi", id=id)
    assert (await other.until("ack", id=id))["seq"] == first["seq"]
    assert await c.nothing(0.3)
    assert await other.nothing(0.1)
    assert len(fake_ai.turns) == 1
    assert [r[:2] for r in await rows(c.session["session_id"])] == [(1, "user"), (2, "assistant")]


async def test_stream_is_coalesced_and_stored(
    chat: Any, make_user: Any, fake_ai: Any, chat_config: Any
) -> None:
    chat_config(STREAM_COALESCE_MS=60)
    fake_ai.words = [f"w{i}" for i in range(40)]
    fake_ai.delay = 0.005  # ~200 pieces/s: several per frame
    user = await make_user()
    c = await chat(user=user)
    _ack, done = await c.turn("conte uma história")
    deltas = [f for f in c.frames if f["type"] == "assistant.delta"]
    assert [d["index"] for d in deltas] == list(range(len(deltas)))
    assert 2 <= len(deltas) < 20  # 40 pieces, far fewer frames
    assert "".join(d["text"] for d in deltas) == done["text"]
    assert done["status"] == "complete"
    assert done["html"].startswith("<p>")
    assert (await rows(c.session["session_id"]))[-1] == (2, "assistant", done["text"], "complete")
    again = await chat(user=user)  # the stored message object matches the live frames
    stored = again.session["messages"][-1]
    assert (stored["text"], stored["html"], stored["created_at"]) == (
        done["text"],
        done["html"],
        done["created_at"],
    )


async def test_stop_cancels_the_pipeline_and_keeps_the_partial_text(
    chat: Any, make_user: Any, fake_ai: Any
) -> None:
    fake_ai.delay = 0.05
    fake_ai.words = [f"w{i}" for i in range(100)]
    c = await chat(user=await make_user())
    await c.message("fale muito")
    await c.until("assistant.delta")
    await c.until("assistant.delta")
    await c.send(type="stop")
    done = await c.until("assistant.done")
    assert done["status"] == "stopped"
    assert done["stopped"] is True
    assert 0 < len(done["text"]) < len(" ".join(fake_ai.words))
    assert fake_ai.cancelled == 1
    assert (await rows(c.session["session_id"]))[-1] == (2, "assistant", done["text"], "stopped")
    # The socket still serves and answers the next message in full.
    fake_ai.delay, fake_ai.words = 0, None
    _, after = await c.turn("e agora?")
    assert after["status"] == "complete"


async def test_ping_is_answered_while_streaming(chat: Any, make_user: Any, fake_ai: Any) -> None:
    fake_ai.delay = 0.05
    c = await chat(user=await make_user())
    await c.message("uma pergunta longa com muitas palavras")
    await c.until("assistant.delta")
    await c.send(type="ping")
    await c.until("pong")
    done = await c.until("assistant.done")
    assert done["status"] == "complete"


async def test_reply_is_stored_after_the_socket_goes(
    chat: Any, make_user: Any, fake_ai: Any
) -> None:
    fake_ai.delay = 0.03
    user = await make_user()
    c = await chat(user=user)
    await c.message("responda mesmo se eu sair")
    await c.until("assistant.delta")
    await c.comm.disconnect()
    await settle()
    stored = await rows(c.session["session_id"])
    assert stored[-1][3] == "complete"
    assert stored[-1][2].endswith("sair")
    back = await chat(user=user)
    await back.send(type="resume", after_seq=1)
    history = await back.until("history", mode="resume")
    assert [m["text"] for m in history["messages"]] == [stored[-1][2]]


async def test_drop_at_a_random_point_then_resume_fifty_times(
    chat: Any, make_user: Any, fake_ai: Any, chat_config: Any
) -> None:
    """The client's transcript equals the database's: no gap, no duplicate."""
    chat_config(RATE_LIMIT="1000/m", STREAM_COALESCE_MS=0)
    fake_ai.delay = 0.002
    user = await make_user()
    key = None
    transcript: dict[int, str] = {}
    waiting: set[int] = set()  # answers seen "streaming" whose done has not arrived yet
    rng = random.Random(1234)

    def learn(messages: list[dict[str, Any]]) -> None:
        for m in messages:
            if m["status"] == "streaming":
                waiting.add(m["seq"])
            else:
                assert transcript.setdefault(m["seq"], m["text"]) == m["text"]
                waiting.discard(m["seq"])

    async def reconnect() -> Any:
        c = await chat(user=user, session_key=key)
        after = max(transcript, default=0)
        await c.send(type="resume", after_seq=after)
        learn((await c.until("history", mode="resume"))["messages"])
        while waiting:
            done = await c.until("assistant.done")
            if done["seq"] in waiting:
                learn([done])
        return c

    for i in range(50):
        c = await reconnect()
        key = key or c.session_key
        text = f"pergunta {i}"
        id = await c.message(text)
        cut = rng.randint(0, 12)  # frames to read before the drop; a reply has ~12
        for _ in range(cut):
            frame = await c.recv()
            if frame["type"] == "ack":
                assert transcript.setdefault(frame["seq"], text) == text
            elif frame["type"] == "assistant.done":
                learn([frame])
                break
        await c.comm.disconnect()
        assert id  # resent never: the ack may be lost, the message is stored all the same
    final = await reconnect()
    await settle()
    await final.send(type="resume", after_seq=0)
    learn((await final.until("history", mode="resume"))["messages"])
    stored = await rows(final.session["session_id"])
    assert [s[0] for s in stored] == list(range(1, 101))
    assert transcript == {seq: text for seq, _sender, text, _status in stored}
    assert all(status == "complete" for _, sender, _, status in stored if sender == "assistant")


async def test_two_tabs_see_every_delta(chat: Any, make_user: Any, fake_ai: Any) -> None:
    fake_ai.delay = 0.01
    user = await make_user()
    tab1 = await chat(user=user)
    await tab1.turn("a primeira cria a sessão")
    tab2 = await chat(user=user)
    assert tab1.session["session_id"] == tab2.session["session_id"]
    await asyncio.sleep(0.3)  # the hello/here exchange
    for sender, watcher in ((tab1, tab2), (tab2, tab1)):
        ack, done = await sender.turn(f"de {id(sender)} com várias palavras")
        relayed = await watcher.until("assistant.done", seq=done["seq"])
        assert relayed == done
        own = [f for f in sender.frames if f.get("seq") == done["seq"] and "index" in f]
        seen = [f for f in watcher.frames if f.get("seq") == done["seq"] and "index" in f]
        assert own == seen
        assert len(own) >= 2
        assert any(
            f["type"] == "user.message" and f["message"]["seq"] == ack["seq"]
            for f in watcher.frames
        )


async def test_close_then_message_starts_a_new_session(
    chat: Any, make_user: Any, fake_ai: Any
) -> None:
    user = await make_user()
    c = await chat(user=user)
    other_tab = await chat(user=user)
    await c.turn("primeira")
    old = c.session["session_id"]
    # The tab opened before the first message follows the session it created.
    await other_tab.until("session", session_id=old)
    await c.send(type="close")
    assert (await c.until("closed"))["session_id"] == old
    assert (await other_tab.until("closed"))["session_id"] == old
    # Slow enough for the other tab to join while the answer streams.
    fake_ai.delay, fake_ai.words = 0.05, [f"w{i}" for i in range(20)]
    await c.message("nova conversa")
    fresh = await c.until("session")
    assert fresh["session_id"] != old
    assert fresh["notice"] == "closed"
    assert fresh["new"]
    assert (await c.until("ack"))["seq"] == 1
    # ...and the other tab moves to the new session with it.
    moved = await other_tab.until("session", session_id=fresh["session_id"])
    assert moved["notice"] == "closed"
    assert [m["text"] for m in moved["messages"]][:1] == ["nova conversa"]
    done = await c.until("assistant.done", seq=2)
    assert (await other_tab.until("assistant.done", seq=2))["text"] == done["text"]
    # The closed session can still be rated, once or again.
    await c.send(type="rating", score=4, comment="bom")
    assert (await c.until("rated"))["score"] == 4


async def test_rating_twice_updates(chat: Any, make_user: Any, fake_ai: Any) -> None:
    c = await chat(user=await make_user())
    await c.turn("oi")
    await c.send(type="rating", score=2)
    await c.until("rated")
    await c.send(type="rating", score=5, comment="melhorou")
    await c.until("rated")
    session = await database_sync_to_async(ChatSession.objects.get)(pk=c.session["session_id"])
    assert (session.rating, session.rating_comment) == (5, "melhorou")


async def test_expired_session_is_not_resumed(chat: Any, make_user: Any, fake_ai: Any) -> None:
    user = await make_user()
    c = await chat(user=user)
    await c.turn("antiga")
    old = c.session["session_id"]
    await database_sync_to_async(
        lambda: ChatSession.objects.filter(pk=old).update(
            last_activity_at=timezone.now() - timedelta(days=2)
        )
    )()
    # The open socket's next message moves to a new session...
    await c.message("ainda aí?")
    fresh = await c.until("session")
    assert fresh["notice"] == "expired"
    assert fresh["session_id"] != old
    await c.until("assistant.done")
    # ...and so does a new connection.
    await database_sync_to_async(
        lambda: ChatSession.objects.filter(pk=fresh["session_id"]).update(
            last_activity_at=timezone.now() - timedelta(days=2)
        )
    )()
    again = await chat(user=user)
    assert again.session["notice"] == "expired"
    assert again.session["messages"] == []
    assert (
        await database_sync_to_async(lambda: ChatSession.objects.get(pk=old).status)() == "expired"
    )


async def test_stale_streaming_placeholder_becomes_incomplete(
    chat: Any, make_user: Any, fake_ai: Any
) -> None:
    user = await make_user()
    c = await chat(user=user)
    await c.turn("oi")
    sid = c.session["session_id"]
    await database_sync_to_async(
        lambda: ChatMessage.objects.filter(session_id=sid, seq=2).update(
            metadata={"status": "streaming"}, created_at=timezone.now() - timedelta(minutes=5)
        )
    )()
    again = await chat(user=user)
    assert again.session["messages"][-1]["status"] == "incomplete"
    stored = await database_sync_to_async(
        lambda: ChatMessage.objects.get(session_id=sid, seq=2).metadata["status"]
    )()
    assert stored == "incomplete"  # settled in the database too, by the history read


async def test_history_pages_by_seq(
    chat: Any, make_user: Any, fake_ai: Any, chat_config: Any
) -> None:
    chat_config(RATE_LIMIT="100/m", HISTORY_PAGE_SIZE=4)
    user = await make_user()
    c = await chat(user=user)
    for i in range(5):
        await c.turn(f"m{i}")
    again = await chat(user=user)
    assert [m["seq"] for m in again.session["messages"]] == [7, 8, 9, 10]
    assert again.session["has_more"] is True
    assert again.session["last_seq"] == 10
    await again.send(type="history", before_seq=7, limit=4)
    page = await again.until("history")
    assert [m["seq"] for m in page["messages"]] == [3, 4, 5, 6]
    assert page["has_more"]
    await again.send(type="history", before_seq=3)
    page = await again.until("history")
    assert [m["seq"] for m in page["messages"]] == [1, 2]
    assert not page["has_more"]


async def test_logout_in_another_tab_closes_4408(chat: Any, make_user: Any, fake_ai: Any) -> None:
    c = await chat(user=await make_user())
    await c.turn("antes")
    store = import_module(settings.SESSION_ENGINE).SessionStore(c.session_key)
    await database_sync_to_async(store.flush)()  # what logout() does
    await c.message("depois")
    assert await c.closed_with() == 4408


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "resume", "after_seq": 0},
        {"type": "history", "before_seq": 3},
        {"type": "rating", "score": 5},
        {"type": "close"},
    ],
)
async def test_after_a_logout_elsewhere_the_socket_can_neither_read_nor_change_the_chat(
    chat: Any, make_user: Any, fake_ai: Any, frame: dict[str, Any]
) -> None:
    c = await chat(user=await make_user())
    await c.turn("antes")
    store = import_module(settings.SESSION_ENGINE).SessionStore(c.session_key)
    await database_sync_to_async(store.flush)()
    await c.send(**frame)
    assert await c.closed_with() == 4408


async def test_database_down_means_unavailable_not_acked(
    chat: Any, make_user: Any, fake_ai: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = await chat(user=await make_user())

    def down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("connection refused")

    real = service.create_with_message_sync
    monkeypatch.setattr(service, "create_with_message_sync", down)  # the first message
    id = await c.message("vai falhar")
    error = await c.until("error")
    assert (error["code"], error["id"]) == ("unavailable", id)
    assert not any(f["type"] in ("ack", "session") for f in c.frames[1:])
    monkeypatch.setattr(service, "create_with_message_sync", real)
    await c.message("vai falhar", id=id)  # the widget resends later
    assert (await c.until("ack", id=id))["seq"] == 1
    await c.until("assistant.done")
    # A later message of the same session, too.
    monkeypatch.setattr(service, "store_user_message_sync", down)
    id = await c.message("de novo")
    error = await c.until("error")
    assert (error["code"], error["id"]) == ("unavailable", id)
    assert await count_rows() == 2


async def test_pipeline_failure_ends_incomplete(chat: Any, make_user: Any, fake_ai: Any) -> None:
    fake_ai.fail = True
    c = await chat(user=await make_user())
    await c.message("quebre")
    assert (await c.until("error"))["code"] == "ai_unavailable"
    done = await c.until("assistant.done")
    assert done["status"] == "incomplete"
    fake_ai.fail = False
    assert (await c.turn("de novo"))[1]["status"] == "complete"


async def test_messages_queue_one_reply_at_a_time_then_busy(
    chat: Any, make_user: Any, fake_ai: Any
) -> None:
    fake_ai.delay = 0.1
    c = await chat(user=await make_user())
    ids = [await c.message(f"q{i}") for i in range(6)]
    busy = await c.until("error")
    assert (busy["code"], busy["id"]) == ("busy", ids[5])
    dones = [await c.until("assistant.done") for _ in range(5)]
    assert [d["seq"] for d in dones] == [2, 4, 6, 8, 10]
    starts = [f for f in c.frames if f["type"] == "assistant.start"]
    # Each answer starts only after the previous one is done.
    for start in starts[1:]:
        previous_done = next(
            i for i, f in enumerate(c.frames) if f == dones[starts.index(start) - 1]
        )
        assert c.frames.index(start) > previous_done


async def test_a_turn_costs_a_fixed_number_of_queries(
    chat: Any, make_user: Any, fake_ai: Any, one_db_thread: None
) -> None:
    postgres = connection.vendor == "postgresql"
    expected = POSTGRES_TURN_QUERIES if postgres else PORTABLE_TURN_QUERIES
    c = await chat(user=await make_user())
    await c.turn("aquecimento")  # the analytics row exists from now on
    for _ in range(2):
        async with ThreadQueries() as queries:
            await c.turn("quanto custa?")
            await settle()
        statements = await db_unit(queries.statements)()
        assert len(statements) <= expected, "\n".join(statements)
        assert len(statements) >= expected - 1  # without the analytics recorder
        # The answer and its counters are stored in autocommit: no savepoint round trips.
        assert not await db_unit(queries.savepoints)()
        if postgres:
            # Stored from the event loop: the answer with its counters, one statement (a
            # logged-in user's message goes through Django's session check, in a database unit).
            assert [s.split()[:3] for s in queries.async_statements] == [["WITH", "s0", "AS"]]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the async path is PostgreSQL's")
async def test_an_anonymous_turn_writes_from_the_event_loop(
    chat: Any, fake_ai: Any, one_db_thread: None
) -> None:
    c = await chat()
    await c.turn("aquecimento")
    async with ThreadQueries() as queries:
        await c.turn("quanto custa?")
        await settle()
    # The message (one statement), then the answer with its counters (one statement); the
    # knowledge lookup is warm and reads nothing. No database thread is needed.
    assert [s.split()[:2] for s in queries.async_statements] == [["WITH", "r"], ["WITH", "s0"]]
    assert await db_unit(queries.thread_statements)() == []


async def test_connect_reads_the_messages_once(
    chat: Any, make_user: Any, fake_ai: Any, one_db_thread: None
) -> None:
    user = await make_user()
    first = await chat(user=user)
    await first.turn("oi")
    async with ThreadQueries() as queries:
        again = await chat(user=user)
    statements = await db_unit(queries.statements)()
    assert [m["text"] for m in again.session["messages"]][:1] == ["oi"]
    # One read of the last page; it also settles dead placeholders, with no query of its own.
    assert len([q for q in statements if "sophie_chat_chatmessage" in q]) == 1, statements


async def test_database_down_on_connect_closes_1011(
    chat: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sophie_chat.conversation.manager import ChatManager

    async def down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(ChatManager, "open_session", staticmethod(down))
    c = await chat(read_session=False)
    assert (await c.recv())["code"] == "unavailable"
    assert await c.closed_with() == 1011


async def test_analytics_failure_keeps_the_stored_answer(
    chat: Any, make_user: Any, fake_ai: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("analytics table locked")

    def broken_statements(*args: Any, **kwargs: Any) -> list[tuple[str, list[Any]]]:
        # The counters as the database would refuse them (the path run from the event loop).
        return [("INSERT INTO sophie_chat_no_such_table (x) VALUES (%s)", [1])]

    monkeypatch.setattr(service, "record_turn", broken)
    monkeypatch.setattr(service.recorder, "turn_statements", broken_statements)
    c = await chat(user=await make_user())
    _ack, done = await c.turn("guarde a resposta")
    assert done["status"] == "complete"
    assert (await rows(c.session["session_id"]))[-1] == (2, "assistant", done["text"], "complete")


async def test_a_queued_reply_is_not_declared_dead_while_it_waits(
    chat: Any, make_user: Any, fake_ai: Any, chat_config: Any
) -> None:
    # Placeholders turn incomplete 2 x 0.4 s after the reply starts; three queued replies of
    # about 0.45 s each put the third one's start past 0.8 s after its placeholder was stored.
    chat_config(OPENAI_TIMEOUT=0.4, STREAM_COALESCE_MS=0)
    fake_ai.delay, fake_ai.words = 0.1, ["a", "b", "c", "d"]
    user = await make_user()
    c = await chat(user=user)
    for i in range(3):
        await c.message(f"fila {i}")
    await c.until("assistant.start", seq=6)
    await asyncio.sleep(0.15)
    other = await chat(user=user)  # a new page: its session frame reads the placeholders
    status = {m["seq"]: m["status"] for m in other.session["messages"]}
    assert status[6] == "streaming"
    assert (await c.until("assistant.done", seq=6))["status"] == "complete"


async def test_stop_from_another_tab_stops_the_reply(
    chat: Any, make_user: Any, fake_ai: Any
) -> None:
    fake_ai.delay, fake_ai.words = 0.05, [f"w{i}" for i in range(100)]
    user = await make_user()
    tab1 = await chat(user=user)
    tab2 = await chat(user=user)
    await tab1.message("fale muito")
    await tab1.until("assistant.delta")
    await tab2.send(type="stop")
    done = await tab1.until("assistant.done", timeout=3)
    assert done["status"] == "stopped"
    # Not fake_ai.cancelled: with a peer the stop may land in the group_send of a delta; the
    # pipeline is then closed with aclose() rather than cancelled.
    assert 0 < len(done["text"]) < len(" ".join(fake_ai.words))


async def test_stop_after_navigating_to_another_page_stops_the_reply(
    chat: Any, make_user: Any, fake_ai: Any
) -> None:
    fake_ai.delay, fake_ai.words = 0.05, [f"w{i}" for i in range(100)]
    user = await make_user()
    first_page = await chat(user=user)
    await first_page.message("fale muito")
    await first_page.until("assistant.delta")
    await first_page.comm.disconnect()  # the visitor opens another page of the site
    next_page = await chat(user=user, session_key=first_page.session_key)
    await next_page.send(type="stop")
    done = await next_page.until("assistant.done", timeout=3)
    assert done["status"] == "stopped"
    await settle()
    assert (await rows(next_page.session["session_id"]))[-1][3] == "stopped"


async def test_close_in_another_tab_stops_the_reply(
    chat: Any, make_user: Any, fake_ai: Any
) -> None:
    fake_ai.delay, fake_ai.words = 0.05, [f"w{i}" for i in range(100)]
    user = await make_user()
    tab1 = await chat(user=user)
    tab2 = await chat(user=user)
    await tab1.message("fale muito")
    await tab1.until("assistant.delta")
    await tab2.send(type="close")
    await tab2.until("closed")
    assert (await tab1.until("assistant.done", timeout=3))["status"] == "stopped"


async def test_ai_unavailable_error_is_in_the_visitors_language(
    chat: Any, make_user: Any, fake_ai: Any
) -> None:
    fake_ai.fail = True
    c = await chat(user=await make_user(), headers=((b"accept-language", b"en"),))
    assert c.session["language"] == "en"
    await c.message("break")
    error = await c.until("error")
    assert error["code"] == "ai_unavailable"
    assert error["message"] == "The assistant could not answer right now. Please try again."


async def test_degraded_answers_in_a_row_escalate_across_pages(
    chat: Any, make_user: Any, fake_ai: Any, chat_config: Any
) -> None:
    chat_config(ESCALATION_FALLBACK_THRESHOLD=2)
    fake_ai.degraded = True
    user = await make_user()
    first_page = await chat(user=user)
    _ack, first = await first_page.turn("não funciona")
    assert first["degraded"] is True
    assert "escalation" not in first
    await first_page.comm.disconnect()  # the visitor moves to another page
    next_page = await chat(user=user, session_key=first_page.session_key)
    _ack, second = await next_page.turn("ainda não funciona")
    assert second["escalation"]["reason"] == "repeated_fallback"
    fake_ai.degraded = False  # a good answer ends the streak
    _ack, third = await next_page.turn("e agora?")
    assert "escalation" not in third


async def test_a_degraded_answers_notice_is_stored_and_sent_again(
    chat: Any, make_user: Any, fake_ai: Any
) -> None:
    fake_ai.degraded = True
    user = await make_user()
    c = await chat(user=user)
    _ack, done = await c.turn("não funciona")
    assert (done["notice"], done["degraded"]) == ("Modo reduzido", True)
    stored = await database_sync_to_async(
        lambda: ChatMessage.objects.get(session_id=c.session["session_id"], seq=2).metadata
    )()
    assert (stored["notice"], stored["degraded"]) == ("Modo reduzido", True)
    again = await chat(user=user)  # session frame
    assert again.session["messages"][-1]["notice"] == "Modo reduzido"
    await again.send(type="resume", after_seq=0)  # history frame
    resumed = (await again.until("history", mode="resume"))["messages"]
    assert resumed[-1]["notice"] == "Modo reduzido"
    assert "notice" not in resumed[0]  # the user's message has none


@database_sync_to_async
def counted_turns(session_id: str) -> int:
    from sophie_chat.models import ChatAnalytics

    row = ChatAnalytics.objects.filter(session_id=session_id).first()
    return row.user_messages if row else 0


async def test_a_turn_ended_by_close_is_counted(chat: Any, make_user: Any, fake_ai: Any) -> None:
    fake_ai.delay, fake_ai.words = 0.05, [f"w{i}" for i in range(100)]
    c = await chat(user=await make_user())
    await c.message("primeira")
    await c.message("segunda")  # queued behind the first
    await c.until("assistant.delta")
    await c.send(type="close")
    await c.until("closed")
    await settle()
    assert await counted_turns(c.session["session_id"]) == 2


async def test_a_turn_whose_answer_could_not_be_stored_is_counted(
    chat: Any, make_user: Any, fake_ai: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("connection lost")

    monkeypatch.setattr(service, "finish_reply_sync", down)
    c = await chat(user=await make_user())
    await c.turn("conte")
    await settle()
    assert await counted_turns(c.session["session_id"]) == 1


async def test_the_knowledge_lookup_runs_while_the_message_is_stored(
    chat: Any, make_user: Any, fake_ai: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sophie_chat.ai import pipeline

    looking = asyncio.Event()
    real_prepare, real_accept = pipeline.prepare, service.accept_message
    prepared: list[str] = []

    async def prepare(turn: Any, **kwargs: Any) -> Any:
        looking.set()
        prepared.append(turn.text)
        return await real_prepare(turn, **kwargs)

    async def accept(*args: Any, **kwargs: Any) -> Any:
        # Stored only once the lookup is under way: without the overlap this never happens.
        await asyncio.wait_for(looking.wait(), 5)
        return await real_accept(*args, **kwargs)

    monkeypatch.setattr(pipeline, "prepare", prepare)
    monkeypatch.setattr(service, "accept_message", accept)
    c = await chat(user=await make_user())
    _ack, done = await c.turn("quanto custa uma diarista?")
    assert done["status"] == "complete"
    assert prepared == ["quanto custa uma diarista?"]
    # The answer is given the lookup started beside the store (the pipeline takes it).
    ahead = fake_ai.turns[-1].extra.get("prepared")
    assert ahead is not None
    assert isinstance((await ahead).context.entries, list)


async def test_failing_counters_cost_neither_the_answer_nor_the_escalation(
    chat: Any, make_user: Any, fake_ai: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = service.recorder.turn_statements

    def counters_refused(session_id: Any, reply_meta: Any) -> list[tuple[str, list[Any]]]:
        _counts, *flag = real(session_id, reply_meta)
        return [("INSERT INTO sophie_chat_no_such_table (x) VALUES (%s)", [1]), *flag]

    monkeypatch.setattr(service.recorder, "turn_statements", counters_refused)
    c = await chat(user=await make_user())
    _ack, done = await c.turn("quero falar com um atendente humano agora")
    assert done["escalation"]["reason"] == "human_request"
    session_id = c.session["session_id"]  # the session frame before the ack names it
    assert (await rows(session_id))[-1] == (2, "assistant", done["text"], "complete")
    stored = await database_sync_to_async(lambda: ChatSession.objects.get(pk=session_id))()
    assert stored.escalated
    assert stored.escalation_reason == "human_request"
