"""The reply stream: coalescing windows, the timeout backstop, and cancellation reaching the AI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.db import database_sync_to_async

from sophie_chat.ai.base import Delta, Reply, Turn
from sophie_chat.conversation import service
from sophie_chat.conversation.service import ReplyControl, ReplyJob


def _job() -> ReplyJob:
    return ReplyJob(
        session_id="s",
        group="",
        seq=2,
        reply_to=1,
        text="oi",
        intent="other",
        language="pt-br",
        user_type="client",
        user_id=1,
        page={},
        user_context={},
        history=[],
    )


async def test_fast_pieces_are_merged_and_a_pause_flushes_at_once(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "STREAM_COALESCE_MS": 200}
    closed = asyncio.Event()

    async def burst_then_pause(turn: Turn) -> AsyncIterator[Delta | Reply]:
        try:
            for i in range(10):
                yield Delta(f"p{i} ")
            await asyncio.sleep(0.8)  # the model pauses: the buffer must not wait for it
            yield Delta("fim")
            yield Reply(text="", source="ai")
        finally:
            closed.set()

    from sophie_chat.ai import pipeline

    monkeypatch.setattr(pipeline, "reply", burst_then_pause)
    frames: list[tuple[float, dict[str, Any]]] = []
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def deliver(frame: dict[str, Any], group: str) -> None:
        frames.append((loop.time() - start, frame))

    control = ReplyControl()
    await service._stream(_job(), Turn(session_id="s", text="oi"), deliver, control)
    texts = [f["text"] for _, f in frames]
    assert texts == ["p0 ", "p1 p2 p3 p4 p5 p6 p7 p8 p9 ", "fim"]
    assert [f["index"] for _, f in frames] == [0, 1, 2]
    assert frames[1][0] < 0.6  # flushed by the window, not by the next piece
    assert control.parts == [f"p{i} " for i in range(10)] + ["fim"]
    assert closed.is_set()


async def test_cancelling_the_stream_cancels_the_pipeline(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    seen: list[str] = []

    async def slow(turn: Turn) -> AsyncIterator[Delta | Reply]:
        try:
            yield Delta("a")
            await asyncio.sleep(10)
            yield Delta("never")
        except asyncio.CancelledError:
            seen.append("cancelled")  # where the OpenAI backend closes its HTTP stream
            raise

    from sophie_chat.ai import pipeline

    monkeypatch.setattr(pipeline, "reply", slow)

    async def deliver(frame: dict[str, Any], group: str) -> None:
        pass

    control = ReplyControl()
    control.task = asyncio.ensure_future(
        service._stream(_job(), Turn(session_id="s", text="oi"), deliver, control)
    )
    await asyncio.sleep(0.1)
    control.cancel("stop")
    with pytest.raises(asyncio.CancelledError):
        await control.task
    assert seen == ["cancelled"]
    assert control.parts == ["a"]


@pytest.mark.django_db(transaction=True)
async def test_a_hung_answer_is_cut_at_the_backstop_and_stored_incomplete(
    chat: Any, fake_ai: Any, chat_config: Any, user_factory: Any
) -> None:
    chat_config(OPENAI_TIMEOUT=0.2)  # backstop at 1.5 x 0.2 s
    fake_ai.delay = 5
    c = await chat(user=await database_sync_to_async(user_factory)())
    await c.message("trava")
    done = await c.until("assistant.done", timeout=5)
    assert done["status"] == "incomplete"
    assert fake_ai.cancelled == 1
    from sophie_chat.models import ChatMessage

    stored = await database_sync_to_async(
        lambda: ChatMessage.objects.get(seq=done["seq"], sender="assistant").metadata
    )()
    assert stored["status"] == "incomplete"
    assert stored["error"] == "timeout"


async def test_a_stop_before_the_stream_starts_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[Turn] = []

    async def never(turn: Turn) -> AsyncIterator[Delta | Reply]:
        calls.append(turn)
        yield Reply(text="completa", source="ai")

    async def stored(*args: Any) -> tuple[str, None]:
        return "", None

    from sophie_chat.ai import pipeline

    monkeypatch.setattr(pipeline, "reply", never)
    monkeypatch.setattr(service, "end_of_turn", stored)
    frames: list[dict[str, Any]] = []

    async def deliver(frame: dict[str, Any], group: str) -> None:
        frames.append(frame)

    control = ReplyControl()
    control.cancel("stop")  # pressed between the ack and the stream's task
    await service.run_reply(_job(), deliver, control, 0)
    assert frames[-1]["type"] == "assistant.done"
    assert frames[-1]["status"] == "stopped"
    assert calls == []


def _idle_session_with_a_question() -> Any:
    from datetime import timedelta

    from django.utils import timezone

    from sophie_chat.models import ChatMessage, ChatSession

    old = timezone.now() - timedelta(days=3)
    session = ChatSession.objects.create(visitor_key="v" * 32, last_activity_at=old, last_seq=1)
    ChatMessage.objects.create(
        session=session, seq=1, sender="user", content="oi", metadata={"intent": "greeting"}
    )
    ChatSession.objects.filter(pk=session.pk).update(last_activity_at=old)
    return session


@pytest.mark.django_db(transaction=True)
def test_a_session_expired_on_open_is_closed_for_analytics() -> None:
    from sophie_chat.conversation.store import open_session_sync
    from sophie_chat.conversation.types import Owner
    from sophie_chat.models import ChatAnalytics

    session = _idle_session_with_a_question()
    state = open_session_sync(Owner(visitor_key="v" * 32), language="pt-br")
    assert (state.new, state.notice) == (True, "expired")
    assert ChatAnalytics.objects.get(session=session).intents == {"greeting": 1}


@pytest.mark.django_db(transaction=True)
def test_sessions_expired_by_the_cleanup_are_closed_for_analytics() -> None:
    from io import StringIO

    from django.core.management import call_command

    from sophie_chat.models import ChatAnalytics

    session = _idle_session_with_a_question()
    call_command("sophie_chat_cleanup", stdout=StringIO())
    assert ChatAnalytics.objects.get(session=session).intents == {"greeting": 1}


async def test_pieces_flushed_at_once_cost_no_task_each(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """The hot path: with nothing buffered the next piece is awaited directly, not in a Task."""
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "STREAM_COALESCE_MS": 0}

    async def quick(turn: Turn) -> AsyncIterator[Delta | Reply]:
        for i in range(100):
            yield Delta(f"p{i} ")
        yield Reply(text="", source="ai")

    from sophie_chat.ai import pipeline

    monkeypatch.setattr(pipeline, "reply", quick)
    made: list[Any] = []
    real = asyncio.ensure_future

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(asyncio, "ensure_future", counting)
    frames: list[dict[str, Any]] = []

    async def deliver(frame: dict[str, Any], group: str) -> None:
        frames.append(frame)

    control = ReplyControl()
    await service._stream(_job(), Turn(session_id="s", text="oi"), deliver, control)
    assert len(frames) == 100
    assert isinstance(control.reply, Reply)
    assert made == []
