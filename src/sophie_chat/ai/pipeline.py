"""The turn pipeline: knowledge lookup, budget, cache, model call with deadlines, fallback.

:func:`reply` yields :class:`~sophie_chat.ai.base.Delta` pieces, then exactly one
:class:`~sophie_chat.ai.base.Reply`; the deltas always concatenate exactly to ``Reply.text``. It
never raises for an AI failure: timeouts, rate limits, server errors, dropped or malformed
streams and a missing key all end in the offline answer (``source="fallback"``,
``degraded=True``, ``error=<kind>``, a translated ``notice``). When the stream breaks after some
text was already shown, that text is kept and the fallback follows it after a separator, in the
same reply. Cancellation (the user pressed stop, or left) propagates as ``CancelledError`` and
closes the upstream stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import sys
from collections.abc import AsyncIterator
from typing import Any

from django.utils.module_loading import import_string

from sophie_chat.ai import budget, cache, fallbacks
from sophie_chat.ai.base import Delta, Reply, Turn, Usage
from sophie_chat.ai.context import TurnContext, gather
from sophie_chat.ai.errors import RETRYABLE_KINDS, AIError, classify_ai_error, retry_after_of
from sophie_chat.ai.offline import OfflineBackend, compose_answer, split_words

# Imported here, not on the first turn: importing the SDK takes over a second.
from sophie_chat.ai.openai import OpenAIBackend
from sophie_chat.ai.prompts import build_prompt
from sophie_chat.conf import get_config
from sophie_chat.conversation.intents import classify
from sophie_chat.logging import get_logger

logger = get_logger(__name__)

RETRY_MARGIN = 0.05  # seconds: a retry must be able to start this long before the deadline


class EmptyAnswer(AIError):
    kind = "other"


def load_backend(cfg: dict[str, Any]) -> Any:
    """The backend class: ``AI_BACKEND``, else OpenAI with a key and offline without one."""
    path = cfg["AI_BACKEND"]
    if path:
        return import_string(path) if isinstance(path, str) else path
    if cfg["OPENAI_API_KEY"]:
        return OpenAIBackend
    return OfflineBackend


if sys.version_info >= (3, 11):

    async def _next_before(agen: AsyncIterator[str], deadline: float) -> str:
        async with asyncio.timeout_at(deadline):
            return await agen.__anext__()

else:  # pragma: no cover - Python 3.10

    async def _next_before(agen: AsyncIterator[str], deadline: float) -> str:
        remaining = max(0.0, deadline - asyncio.get_running_loop().time())
        return await asyncio.wait_for(agen.__anext__(), remaining)


def _estimate(chars: int) -> int:
    return math.ceil(chars / 4)


def _retry_delay(exc: BaseException, kind: str, attempt: int, deadline: float) -> float | None:
    """Seconds to wait before another attempt, or None to fall back now."""
    if attempt > int(get_config()["OPENAI_MAX_RETRIES"]) or kind not in RETRYABLE_KINDS:
        return None
    delay = retry_after_of(exc)
    if delay is None:
        delay = min(1.0, 0.1 * 2 ** (attempt - 1))
    if asyncio.get_running_loop().time() + delay + RETRY_MARGIN >= deadline:
        return None  # waiting would cost the user more than the fallback does
    return delay


async def _take_prepared(turn: Turn) -> None:
    """Use what :func:`prepare` found ahead (``turn.extra["prepared"]``, an awaitable of a
    :class:`Prepared` for this turn's inputs): its knowledge, and its cache read."""
    ahead = turn.extra.pop("prepared", None)
    if ahead is None:
        return
    try:
        found: Prepared = await ahead  # a stop or a deadline cancels it with this turn
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.warning("prepared_lookup_failed", session=turn.session_id)
        return
    turn.extra["knowledge"], turn.extra["services"] = found.context.entries, found.context.services
    if found.cache_lookup is not None:
        turn.extra["cache_lookup"] = found.cache_lookup


async def _replay(text: str) -> AsyncIterator[Delta]:
    for piece in split_words(text):
        yield Delta(piece)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


async def reply(turn: Turn) -> AsyncIterator[Delta | Reply]:
    """Yield the answer's deltas, then one final :class:`Reply`."""
    cfg = get_config()
    loop = asyncio.get_running_loop()
    started = loop.time()
    turn = dataclasses.replace(
        turn, text=turn.text[: int(cfg["MAX_MESSAGE_LENGTH"])], extra=dict(turn.extra)
    )
    intent = turn.intent if turn.intent != "other" else classify(turn.text, turn.language)
    turn.intent = intent
    await _take_prepared(turn)
    ctx = await gather(turn)
    turn.extra["knowledge"], turn.extra["services"] = ctx.entries, ctx.services
    meta: dict[str, Any] = {"intent": intent, "knowledge": [e.get("slug") for e in ctx.entries]}

    def fallback(kind: str, prefix: str = "") -> tuple[str, Reply]:
        """The offline answer; ``kind`` "" for the deliberate offline mode (not degraded)."""
        answer = compose_answer(turn.text, turn.language, ctx.entries, intent, ctx.services)
        extra = fallbacks.SEPARATOR + answer if prefix else answer
        meta["response_ms"] = _ms(loop.time() - started)
        note = fallbacks.notice(turn.language, kind) if kind else ""
        if note:
            meta["notice"] = note  # where the conversation core reads it
        result = Reply(
            text=prefix + extra,
            source="fallback",
            model="offline",
            error=kind,
            degraded=bool(kind),
            notice=note,
            metadata=meta,
        )
        return extra, result

    try:
        backend_cls = load_backend(cfg)
        offline = getattr(backend_cls, "name", "") == OfflineBackend.name
        prompt = None if offline else build_prompt(turn, ctx.entries, ctx.services)
    except Exception:
        # A broken AI_BACKEND path or prompt template (the system checks flag both) must not
        # cost the user an answer.
        logger.exception("ai_setup_failed", session=turn.session_id)
        text, result = fallback("other")
        async for delta in _replay(text):
            yield delta
        yield result
        return

    if prompt is None:
        text, result = fallback("")
        async for delta in _replay(text):
            yield delta
        result.usage = Usage(0, 0)
        yield result
        return

    if await budget.exhausted(turn):
        logger.info("ai_budget_exhausted", session=turn.session_id)
        text, result = fallback("budget")
        async for delta in _replay(text):
            yield delta
        yield result
        return

    model = str(cfg["OPENAI_MODEL"])
    cache_key, kb = "", ""
    # A turn with history is keyed by its session's whole conversation so far, which never comes
    # round again: its get could not hit and its put would only fill Redis with dead keys.
    if cache.enabled() and not turn.history:
        cache_key = cache.make_key(prompt, model, cache.scope_for(turn))
        early = turn.extra.get("cache_lookup")
        # Read ahead while the message was being stored (prepare()), for this very prompt.
        found = early[1] if early and early[0] == cache_key else await cache.lookup(cache_key)
        kb, hit = found.kb_version, found.hit
        if hit is not None:
            meta["first_token_ms"] = meta["response_ms"] = _ms(loop.time() - started)
            logger.info("ai_reply", session=turn.session_id, source="cache")
            async for delta in _replay(hit["text"]):
                yield delta
            yield Reply(text=hit["text"], source="cache", model=hit.get("model", ""), metadata=meta)
            return

    call_started = loop.time()
    overall = call_started + float(cfg["OPENAI_TIMEOUT"])
    first_deadline = min(overall, call_started + float(cfg["OPENAI_FIRST_TOKEN_TIMEOUT"]))
    parts: list[str] = []
    attempt = 0
    failure = ""
    backend: Any = None
    while True:
        attempt += 1
        backend = backend_cls()
        agen: Any = backend.stream(prompt, turn).__aiter__()
        try:
            while True:
                try:
                    piece = await _next_before(agen, overall if parts else first_deadline)
                except StopAsyncIteration:
                    break
                if piece:
                    if not parts:
                        meta["first_token_ms"] = _ms(loop.time() - started)
                    parts.append(piece)
                    yield Delta(piece)
            if not parts:
                raise EmptyAnswer("empty answer")
            break
        except Exception as exc:
            kind = classify_ai_error(exc)
            if kind == "connection" and parts:
                kind = "stream_dropped"
            delay = None if parts else _retry_delay(exc, kind, attempt, first_deadline)
            logger.warning(
                "ai_call_failed",
                session=turn.session_id,
                kind=kind,
                exc_class=type(exc).__name__,
                attempt=attempt,
                retry=delay is not None,
            )
            if delay is None:
                failure = kind
                break
            await asyncio.sleep(delay)
        finally:
            await agen.aclose()

    meta["attempts"] = attempt
    partial = "".join(parts)
    prompt_chars = sum(len(m["content"]) for m in prompt.messages)
    usage = backend.last_usage if not failure else None
    if usage is None:
        usage = Usage(_estimate(prompt_chars), _estimate(len(partial)), estimated=True)
    if parts or not failure:
        await budget.add(turn, usage.prompt_tokens + usage.completion_tokens)

    if failure:
        text, result = fallback(failure, prefix=partial)
        async for delta in _replay(text):
            yield delta
        result.usage = usage
        logger.info("ai_reply", session=turn.session_id, source="fallback", kind=failure)
        yield result
        return

    if cache_key:
        await cache.put(cache_key, partial, getattr(backend, "model", "") or model, kb)
    meta["response_ms"] = _ms(loop.time() - started)
    logger.info(
        "ai_reply",
        session=turn.session_id,
        source="ai",
        first_token_ms=meta.get("first_token_ms"),
        response_ms=meta["response_ms"],
    )
    yield Reply(
        text=partial,
        source="ai",
        model=getattr(backend, "model", "") or model,
        usage=usage,
        metadata=meta,
    )


@dataclasses.dataclass
class Prepared:
    """What :func:`prepare` found for a turn: its knowledge, and the cache read of its prompt
    (``(key, lookup)``) when that prompt could be cached."""

    context: TurnContext
    cache_lookup: tuple[str, cache.Lookup] | None = None


async def prepare(turn: Turn, *, read_cache: bool = False) -> Prepared:
    """The work of a turn that needs no stored message: the knowledge lookup and, with
    ``read_cache`` (the caller knows the turn will have no history: the first message of a
    conversation), the answer cache's read of its prompt.

    The conversation layer runs it while the message is being stored; :func:`reply` uses what
    it found when the turn turns out as assumed (``turn.extra["knowledge"]``, ``"services"``,
    ``"cache_lookup"``) and redoes the rest.
    """
    ctx = await gather(turn)
    if not read_cache or turn.history or not cache.enabled() or cache.scope_for(turn):
        return Prepared(ctx)  # a personal prompt's key needs its session: none is known yet
    cfg = get_config()
    if getattr(load_backend(cfg), "name", "") == OfflineBackend.name:
        return Prepared(ctx)
    ahead = dataclasses.replace(turn, text=turn.text[: int(cfg["MAX_MESSAGE_LENGTH"])])
    key = cache.make_key(
        build_prompt(ahead, ctx.entries, ctx.services), str(cfg["OPENAI_MODEL"]), ""
    )
    return Prepared(ctx, (key, await cache.lookup(key)))


__all__ = ["Prepared", "TurnContext", "load_backend", "prepare", "reply"]
