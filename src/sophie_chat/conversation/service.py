"""The turn pipeline: store and acknowledge a user message, then stream and store the answer.

A socket hands each stored message to its :class:`ReplyWorker`, which answers one message at a
time in its own task, so the socket keeps reading ``stop``, ``ping`` and the disconnect while an
answer streams. The task does not belong to the socket: when every tab has gone it still
finishes (capped at 1.5 x ``OPENAI_TIMEOUT``) and stores the answer, which a reconnecting client
then gets with ``resume``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from typing import Any, cast

from channels.db import database_sync_to_async
from django.db import IntegrityError, transaction
from django.utils import translation

from sophie_chat import aiodb, gcfreeze, protocol
from sophie_chat.ai import pipeline
from sophie_chat.ai.base import Delta, HistoryItem, Reply, Turn
from sophie_chat.conf import get_config
from sophie_chat.conversation import creation, escalation, intents
from sophie_chat.conversation.creation import NewSession, create_with_message_sync
from sophie_chat.conversation.manager import (
    LoggedOut,
    Owner,
    StoredMessage,
    finish_reply_statement,
    finish_reply_sync,
    mark_escalated_sync,
    mark_reply_started_sync,
    still_logged_in,
    store_user_message_sync,
)
from sophie_chat.conversation.store import history_rows, one_statement, resent_message
from sophie_chat.dbunits import db_unit
from sophie_chat.logging import get_logger
from sophie_chat.rendering import render_markdown

record_turn: Callable[..., None] | None
try:  # The analytics layer is optional until it lands.
    from sophie_chat.analytics import recorder
    from sophie_chat.analytics.recorder import record_turn
except ImportError:  # pragma: no cover - depends on the analytics issue
    record_turn = None

logger = get_logger(__name__)

Deliver = Callable[[dict[str, Any], str], Awaitable[None]]
# Strong references to running answers: a task nobody references may be garbage-collected.
_RUNNING: set[asyncio.Task[Any]] = set()
# The answers running in this process, by (session id, seq): a `stop` from any socket of the
# session on this process reaches them, even after the socket that asked has gone.
_REPLIES: dict[tuple[str, int], ReplyControl] = {}


@dataclass
class ReplyJob:
    """One answer to write: everything the reply task needs, copied out of the socket."""

    session_id: Any
    group: str
    seq: int
    reply_to: int
    text: str
    intent: str
    language: str
    user_type: str
    user_id: int | None
    page: dict[str, Any]
    user_context: dict[str, Any]
    history: list[tuple[str, str]]
    created_at: str = ""  # ISO 8601 time of the answer's placeholder (= the user message's)
    stopped: bool = False  # answered as "stopped" without asking the AI (session closed)
    queued: bool = False  # waited behind another answer: its start is written when it starts
    consecutive_fallbacks: int = 0  # degraded answers in a row before it, read from history
    # The knowledge lookup started while the message was being stored (see look_up_knowledge).
    lookup: KnowledgeLookup | None = None


@dataclass
class KnowledgeLookup:
    """A turn's knowledge lookup, started before the message's store unit returns.

    The lookup needs only what the socket knows when the message arrives (text, language, user
    type, page, intent), so it runs beside the store on another database thread instead of
    after it: the turn waits for the longer of the two, not for both in a row. It is used only
    if the stored message confirms what it was started with.
    """

    key: tuple[Any, ...]
    future: asyncio.Future[pipeline.Prepared]

    def for_turn(self, turn: Turn) -> asyncio.Future[pipeline.Prepared] | None:
        """The lookup if it was made for ``turn``'s inputs (the pipeline awaits it), else None
        (and it is cancelled)."""
        key = _lookup_key(turn.text, turn.language, turn.user_type, turn.page, turn.intent)
        if self.key != key:
            self.cancel()
            return None
        return self.future

    def cancel(self) -> None:
        self.future.cancel()  # done already: nothing (its failure is retrieved when it ends)


def _lookup_key(
    text: str, language: str, user_type: str, page: dict[str, Any], intent: str
) -> tuple[Any, ...]:
    return (text, language, user_type, tuple(sorted((page or {}).items())), intent)


def look_up_knowledge(
    text: str,
    *,
    language: str,
    user_type: str,
    page: dict[str, Any],
    intent: str,
    user_id: int | None = None,
    user_context: dict[str, Any] | None = None,
    first: bool = False,
) -> KnowledgeLookup:
    """Start the knowledge lookup of a message that is about to be stored; ``first``: it will
    open a conversation (no history), so the answer cache can be read ahead too."""
    turn = Turn(
        session_id="",
        text=text,
        language=language,
        user_type=user_type,
        user_id=user_id,
        intent=intent,
        page=page,
        user_context=dict(user_context or {}),
    )
    future = asyncio.ensure_future(pipeline.prepare(turn, read_cache=first))
    # Whoever uses it sees a failure; one nobody awaits (a refused message) is not logged.
    future.add_done_callback(lambda done: done.cancelled() or done.exception())
    return KnowledgeLookup(_lookup_key(text, language, user_type, page, intent), future)


@dataclass
class ReplyControl:
    """Shared between the stream and whoever may stop it."""

    reason: str | None = None  # "stop" or "timeout" once cancelled on purpose
    task: asyncio.Task[Any] | None = None
    parts: list[str] = field(default_factory=list)
    reply: Reply | None = None
    first_token_at: float | None = None

    def cancel(self, reason: str) -> None:
        if self.reason is not None or (self.task is not None and self.task.done()):
            return
        # Before the stream's task exists the reason is only recorded: run_reply checks it.
        self.reason = reason
        if self.task is not None:
            self.task.cancel()


def stop_session(session_id: Any) -> int:
    """Stop every answer of the session running in this process; return how many."""
    key = str(session_id)
    stopped = 0
    for (sid, _seq), control in list(_REPLIES.items()):
        if sid == key:
            control.cancel("stop")
            stopped += 1
    return stopped


def _accept_message_sync(
    owner: Owner,
    session_id: Any,
    *,
    client_id: str,
    text: str,
    page: dict[str, Any] | None,
    context: dict[str, Any] | None,
    language: str,
    auth: tuple[str, int] | None,
    new: NewSession | None = None,
    intent: str | None = None,
) -> tuple[str, StoredMessage]:
    if auth is not None and not still_logged_in(*auth):
        raise LoggedOut
    if intent is None:
        intent = intents.classify(text, language)
    metadata = _message_metadata(intent, page)
    history_size = int(get_config()["HISTORY_MESSAGES_FOR_MODEL"])
    if session_id is None:
        if new is None:
            raise ValueError("a message without a session needs the NewSession to create")
        stored = create_with_message_sync(
            owner,
            new,
            client_id=client_id,
            text=text,
            metadata=metadata,
            context=context,
            history_size=history_size,
        )
    else:
        stored = store_user_message_sync(
            owner,
            session_id,
            client_id=client_id,
            text=text,
            metadata=metadata,
            context=context,
            history_size=history_size,
        )
    return intent, stored


def _message_metadata(intent: str, page: dict[str, Any] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"intent": intent}
    if page is not None:
        metadata["page"] = page
    return metadata


#: One database unit: logout check, intent, dedup, seq reservation, both rows, model history.
#: Without a session (``session_id`` None) the unit creates it with the message: the history is
#: then empty and not read.
_accept_unit = db_unit(_accept_message_sync)
_history_unit = db_unit(history_rows)
_resent_unit = db_unit(resent_message)


async def accept_message(
    owner: Owner,
    session_id: Any,
    *,
    client_id: str,
    text: str,
    page: dict[str, Any] | None,
    context: dict[str, Any] | None,
    language: str,
    auth: tuple[str, int] | None,
    new: NewSession | None = None,
    intent: str | None = None,
) -> tuple[str, StoredMessage]:
    """Store a user message and its answer's placeholder; return its intent and what was stored.

    On PostgreSQL the store is one statement on the event loop (:mod:`sophie_chat.aiodb`), also
    for the message that creates its session (``session_id`` None, ``new`` its settings);
    otherwise, for a logged-in user (whose session must still log them in: Django's session and
    auth code) and on the rare paths (a resend, an ended session, a racing writer, another tab's
    session created first), it is one database unit.
    """
    unit = functools.partial(
        _accept_unit,
        owner,
        session_id,
        client_id=client_id,
        text=text,
        page=page,
        context=context,
        language=language,
        auth=auth,
        new=new,
        intent=intent,
    )
    if auth is not None or not aiodb.enabled() or (session_id is None and new is None):
        return await unit()
    if intent is None:
        intent = intents.classify(text, language)
    metadata = _message_metadata(intent, page)
    if session_id is None:
        assert new is not None
        sql, params, session = creation.first_message_sql(
            owner, new, client_id=client_id, text=text, metadata=metadata
        )
        # Not run twice on a lost connection: had the first run committed, the second would
        # find that session and take the message for a resend (the client sends it again).
        if await aiodb.fetchone(sql, params) is None:
            return await unit()  # the owner has an active session (another tab's): stored there
        return intent, creation.created_message(
            session, new, client_id=client_id, text=text, metadata=metadata
        )
    statement = one_statement(
        owner,
        session_id,
        client_id=client_id,
        text=text,
        metadata=metadata,
        context=context,
        history_size=int(get_config()["HISTORY_MESSAGES_FOR_MODEL"]),
    )
    retried = []
    try:
        # Safe to run twice: a second run of a stored message is refused by its client id.
        row = await aiodb.fetchone(
            statement.sql, statement.params, retry=True, on_retry=lambda: retried.append(1)
        )
    except IntegrityError:
        again = await _resent_unit(session_id, client_id)  # acknowledged, not stored again
        if retried:
            # The connection died after our own first attempt committed: the message is ours,
            # stored a moment ago, and still needs its answer (given without its history).
            again = dataclasses.replace(again, duplicate=False)
        return intent, again
    if row is None:
        return await unit()  # ended, expired or not the owner's: the unit tells which
    stored = statement.stored(row)
    if stored is None:  # another writer committed while this one waited for the row lock
        history = await _history_unit(session_id, row[0], statement.history_size)
        stored = statement.stored(row, history)
    assert stored is not None
    return intent, stored


def build_turn(job: ReplyJob, consecutive_fallbacks: int) -> Turn:
    return Turn(
        session_id=str(job.session_id),
        text=job.text,
        language=job.language,
        user_type=job.user_type,
        user_id=job.user_id,
        intent=job.intent,
        history=[HistoryItem(role=sender, content=text) for sender, text in job.history],  # type: ignore[arg-type]
        page=dict(job.page),
        user_context=dict(job.user_context),
        extra={"consecutive_fallbacks": consecutive_fallbacks},
    )


async def _stream(job: ReplyJob, turn: Turn, deliver: Deliver, control: ReplyControl) -> None:
    """Relay the pipeline's deltas, merged into one frame per ``STREAM_COALESCE_MS``.

    A piece arriving a window or more after the last frame goes out at once, with whatever
    waited; a piece arriving sooner waits, and one timer per window sends it should the model
    pause. No task per piece: the stream is read by this coroutine alone, so a cancellation
    (stop, timeout) reaches the pipeline, which closes its upstream request.
    """
    loop = asyncio.get_running_loop()
    window = float(get_config()["STREAM_COALESCE_MS"]) / 1000
    # Looked up at call time: the AI layer (and tests) may replace pipeline.reply.
    agen = cast(AsyncGenerator[Any, None], pipeline.reply(turn))
    buffer: list[str] = []
    index = 0
    last_flush = -window
    timer: asyncio.TimerHandle | None = None
    late: asyncio.Task[None] | None = None  # a flush the timer started

    async def flush() -> None:
        nonlocal index, last_flush, timer
        if timer is not None:
            timer.cancel()
            timer = None
        if not buffer:
            return
        text = "".join(buffer)
        buffer.clear()
        last_flush = loop.time()
        frame = protocol.assistant_delta_frame(job.seq, index, text)
        index += 1
        await deliver(frame, job.group)

    def on_timer() -> None:
        nonlocal timer, late
        timer = None
        if buffer and late is None:
            late = asyncio.ensure_future(flush())

    async def settle_late() -> None:
        # Frames leave in order: a flush started by the timer ends before the next one starts.
        nonlocal late
        if late is not None:
            task, late = late, None
            await task

    try:
        async for item in agen:
            if isinstance(item, Delta) and item.text:
                if control.first_token_at is None:
                    control.first_token_at = loop.time()
                control.parts.append(item.text)
                await settle_late()
                buffer.append(item.text)
                # The first piece, and any piece after a pause, goes out at once.
                if loop.time() - last_flush >= window:
                    await flush()
                elif timer is None:
                    timer = loop.call_at(last_flush + window, on_timer)
            elif isinstance(item, Reply):
                control.reply = item
            if control.reason is not None:
                # Stopped while delivering: a channel-layer send may swallow the cancellation.
                raise asyncio.CancelledError
        await settle_late()
        await flush()
    finally:
        if timer is not None:
            timer.cancel()
        if late is not None:
            if not late.done():
                late.cancel()
            with suppress(BaseException):
                await late  # also retrieves a failed flush's exception (no "never retrieved")
        with suppress(BaseException):
            await agen.aclose()


def _finished(
    job: ReplyJob, text: str, metadata: dict[str, Any], state: dict[str, Any]
) -> tuple[str, dict[str, Any] | None, dict[str, Any]]:
    """The answer's HTML, the escalation decision and the metadata to store (no I/O)."""
    html = render_markdown(text) if text else ""
    decision = None
    try:
        decision = escalation.decide(job.text, job.intent, state)
    except Exception:
        logger.exception("escalation_decide_failed", session=str(job.session_id))
    metadata = {**metadata, "html": html}
    if decision:
        metadata["escalation"] = decision
    return html, decision, metadata


def _end_of_turn_sync(
    job: ReplyJob, text: str, metadata: dict[str, Any], state: dict[str, Any]
) -> tuple[str, dict[str, Any] | None]:
    """Render, decide on escalation, then store the answer and count the turn.

    Two statements in autocommit, not one transaction: the answer is one UPDATE, the counters
    one upsert, and a failing counter must not cost the stored answer. A transaction around them
    would add BEGIN, SAVEPOINT, RELEASE and COMMIT: four more round trips on every turn.
    """
    html, decision, metadata = _finished(job, text, metadata, state)
    finish_reply_sync(job.session_id, job.seq, text=text, metadata=metadata)
    # Counts the turn and flags an escalated session.
    if not _record_turn_sync(job, metadata) and decision:
        mark_escalated_sync(job.session_id, str(decision.get("reason", "")))
    return html, decision


def _record_turn_sync(job: ReplyJob, metadata: dict[str, Any]) -> bool:
    """Count the turn in the analytics; whether it was counted. Never raises."""
    if record_turn is None:
        return False
    try:
        # An escalating turn writes the counters and the session's flag: both or neither. A
        # plain turn is one upsert, atomic on its own.
        with transaction.atomic() if metadata.get("escalation") else nullcontext():
            record_turn(job.session_id, reply_meta=metadata, user_intent=job.intent)
    except Exception:
        logger.exception("record_turn_failed", session=str(job.session_id), seq=job.seq)
        return False
    return True


_end_of_turn_unit = db_unit(_end_of_turn_sync)
_turn_recorded_unit = db_unit(recorder.turn_recorded) if record_turn is not None else None


async def end_of_turn(
    job: ReplyJob, text: str, metadata: dict[str, Any], state: dict[str, Any]
) -> tuple[str, dict[str, Any] | None]:
    """:func:`_end_of_turn_sync`; on PostgreSQL its statements run on the event loop, in one
    round trip (:mod:`sophie_chat.aiodb`), and only the rare follow-ups take a thread."""
    if record_turn is None or not aiodb.enabled():
        return await _end_of_turn_unit(job, text, metadata, state)
    html, decision, metadata = _finished(job, text, metadata, state)
    answer = finish_reply_statement(job.session_id, job.seq, text=text, metadata=metadata)
    counts, *flag = recorder.turn_statements(job.session_id, metadata)
    try:
        # The answer, the session's escalation flag and the counters: one round trip. Run again
        # on a new connection if the first was gone (the counters then count once, unless the
        # connection died just after the commit: a turn counted twice, nothing lost).
        await aiodb.execute(*aiodb.as_one([answer, *flag, counts]), retry=True)
    except Exception:
        # All or nothing failed: failing counters must not cost the answer or its escalation.
        logger.exception("turn_store_failed", session=str(job.session_id), seq=job.seq)
        await aiodb.execute(*aiodb.as_one([answer, *flag]), retry=True)
        return html, decision
    if decision or recorder.may_alert(metadata):
        # Signal receivers, e-mail and the failure alert are the site's code or blocking I/O:
        # on the chat's threads, not the one Channels and Django's sync views share.
        assert _turn_recorded_unit is not None  # the recorder is there (record_turn is)
        _spawn(_turn_recorded_unit(job.session_id, metadata, job.intent))
    else:
        recorder.turn_recorded(job.session_id, metadata, job.intent)
    return html, decision


def _spawn(coro: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(coro)
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)


async def run_reply(
    job: ReplyJob, deliver: Deliver, control: ReplyControl, consecutive_fallbacks: int
) -> int:
    """Stream one answer and store it; return the degraded answers in a row, this one included."""
    loop = asyncio.get_running_loop()
    config = get_config()
    started = loop.time()
    await deliver(protocol.assistant_start_frame(job.seq, job.reply_to), job.group)
    turn = build_turn(job, consecutive_fallbacks)
    if job.lookup is not None:
        # Usually done by now: it ran beside the store. The pipeline waits for it if not, under
        # the answer's deadlines and stop, like its own lookup.
        prepared = job.lookup.for_turn(turn)
        if prepared is not None:
            turn.extra["prepared"] = prepared
    control.task = asyncio.ensure_future(_stream(job, turn, deliver, control))
    if control.reason is not None:  # stopped before the task existed: it never starts
        control.task.cancel()
    # A backstop only: the pipeline enforces OPENAI_TIMEOUT itself. Below 2 x OPENAI_TIMEOUT,
    # the age at which a placeholder is declared dead, so a live answer is never marked so.
    cap = loop.call_later(1.5 * float(config["OPENAI_TIMEOUT"]), control.cancel, "timeout")
    status, failed = "complete", False
    try:
        await control.task
    except asyncio.CancelledError:
        if control.reason is None:
            raise  # this worker itself is being cancelled (server shutdown)
        status = "stopped" if control.reason == "stop" else "incomplete"
    except Exception:
        logger.exception("reply_failed", session=str(job.session_id), seq=job.seq)
        status, failed = "incomplete", True
    finally:
        cap.cancel()
    reply = control.reply
    if status == "complete" and reply is None:
        status, failed = "incomplete", True
    text = reply.text if (status == "complete" and reply) else "".join(control.parts)
    source = reply.source if reply else "ai"
    now = loop.time()
    metadata: dict[str, Any] = {
        "status": status,
        "source": source,
        "intent": job.intent,
        "model": reply.model if reply else "",
        "tokens_in": reply.usage.prompt_tokens if reply else 0,
        "tokens_out": reply.usage.completion_tokens if reply else 0,
        "tokens_estimated": reply.usage.estimated if reply else True,
        "first_token_ms": int(((control.first_token_at or now) - started) * 1000),
        "response_ms": int((now - started) * 1000),
        "error": (reply.error if reply else "")
        or ("timeout" if control.reason == "timeout" else ""),
    }
    # Only degraded answers (the model failed) count: offline mode answers every message with
    # source "fallback" on purpose, and that is no reason to hand the visitor to a human.
    degraded = failed or bool(reply and (reply.degraded or reply.metadata.get("degraded")))
    fallbacks = consecutive_fallbacks + 1 if degraded else 0
    metadata["degraded"] = degraded  # stored: the next message counts the streak from history
    notice = (reply.metadata.get("notice") or reply.notice) if reply else ""
    if notice:  # shown again with the stored answer (session and history frames)
        metadata["notice"] = notice
    state = {
        "consecutive_fallbacks": fallbacks,
        "recent_user_texts": [*[t for s, t in job.history if s == "user"][-4:], job.text],
        "reply_source": source,
    }
    html, decision = "", None
    try:
        html, decision = await end_of_turn(job, text, metadata, state)
    except Exception:
        # The answer still reaches the client; its placeholder is marked incomplete later.
        logger.exception("reply_store_failed", session=str(job.session_id), seq=job.seq)
        with suppress(Exception):  # the turn still happened: count it on its own
            await database_sync_to_async(_record_turn_sync)(job, metadata)
    if failed:
        with translation.override(job.language):  # the frame's message is translated
            frame = protocol.error_frame(protocol.ErrorCode.AI_UNAVAILABLE)
        await deliver(frame, job.group)
    await deliver(
        protocol.assistant_done_frame(
            job.seq,
            text=text,
            html=html,
            source=source,
            intent=job.intent,
            status=status,
            created_at=job.created_at or None,
            stopped=True if status == "stopped" else None,
            degraded=True if (reply and reply.degraded) else None,
            notice=notice or None,
            escalation=decision,
        ),
        job.group,
    )
    logger.info(
        "reply_done",
        session=str(job.session_id),
        seq=job.seq,
        status=status,
        source=source,
        first_token_ms=metadata["first_token_ms"],
        response_ms=metadata["response_ms"],
    )
    gcfreeze.after_first_turn()  # once per process: what the first turn imported and built
    return fallbacks


class ReplyWorker:
    """Answers a socket's messages one at a time, in a task that outlives the socket."""

    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._queue: deque[ReplyJob] = deque()
        self._task: asyncio.Task[Any] | None = None
        self.current: ReplyControl | None = None
        # The streak after this worker's last answer, and its session: a queued message was
        # stored before that answer ended, so its own count from history is out of date.
        self.consecutive_fallbacks = 0
        self._last_session: Any = None

    @property
    def pending(self) -> int:
        return len(self._queue) + (1 if self.current is not None else 0)

    def submit(self, job: ReplyJob) -> None:
        job.queued = self.pending > 0
        self._queue.append(job)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
            _RUNNING.add(self._task)
            self._task.add_done_callback(_RUNNING.discard)

    def stop(self) -> None:
        """Stop the answer streaming now; queued messages are still answered."""
        if self.current is not None:
            self.current.cancel("stop")

    def stop_all(self) -> None:
        """Stop the current answer and every queued one (the session is being closed)."""
        for job in self._queue:
            job.stopped = True
        self.stop()

    async def _run(self) -> None:
        while self._queue:
            job = self._queue.popleft()
            self.current = control = ReplyControl()
            key = (str(job.session_id), job.seq)
            _REPLIES[key] = control
            try:
                if job.stopped:
                    if job.lookup is not None:
                        job.lookup.cancel()
                    await _store_stopped(job, self._deliver)
                    continue
                if job.queued:  # one UPDATE, only for an answer that had to wait
                    try:
                        await database_sync_to_async(mark_reply_started_sync)(
                            job.session_id, job.seq
                        )
                    except Exception:
                        logger.exception("reply_start_store_failed", session=str(job.session_id))
                streak = job.consecutive_fallbacks
                if job.queued and self._last_session == job.session_id:
                    streak = self.consecutive_fallbacks
                self.consecutive_fallbacks = await run_reply(job, self._deliver, control, streak)
                self._last_session = job.session_id
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("reply_worker_failed", session=str(job.session_id))
            finally:
                self.current = None
                _REPLIES.pop(key, None)


def _store_stopped_sync(job: ReplyJob, metadata: dict[str, Any]) -> None:
    with transaction.atomic():
        finish_reply_sync(job.session_id, job.seq, text="", metadata=metadata)
        _record_turn_sync(job, metadata)


async def _store_stopped(job: ReplyJob, deliver: Deliver) -> None:
    metadata = {"status": "stopped", "source": "ai", "intent": job.intent}
    with suppress(Exception):
        await database_sync_to_async(_store_stopped_sync)(job, metadata)
    await deliver(
        protocol.assistant_done_frame(
            job.seq,
            text="",
            html="",
            source="ai",
            intent=job.intent,
            status="stopped",
            stopped=True,
            created_at=job.created_at or None,
        ),
        job.group,
    )
