"""The response cache: shared only between identical, non-personal model inputs."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from sophie_chat.ai import _store, cache
from sophie_chat.ai.base import HistoryItem

REDIS_URL = "redis://127.0.0.1:6379/14"
PAGE = {"url": "/servicos/diarista/", "title": "Diarista", "referrer": "", "status": 200}


@pytest.fixture
def redis_cache(openai_server, settings):
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "REDIS_URL": REDIS_URL}
    _store.clear_all()
    yield redis.Redis.from_url(REDIS_URL)
    _store.clear_all()


async def test_same_question_same_page_other_visitor_comes_from_cache(
    openai_server, turn_factory, run
):
    openai_server.configure(content="Uma diarista custa a partir de R$ 150.", ttft=0.2)
    first = await run(turn_factory("Quanto custa uma diarista?", page=PAGE))
    second = await run(turn_factory("Quanto custa uma diarista?", page=PAGE))
    assert first.reply.source == "ai"
    assert second.reply.source == "cache"
    assert second.reply.text == first.reply.text
    assert len(second.deltas) > 3  # streamed like any answer
    assert len(openai_server.requests) == 1
    assert second.elapsed < first.elapsed


async def test_another_page_is_another_prompt(openai_server, turn_factory, run):
    await run(turn_factory("Quanto custa?", page=PAGE))
    await run(turn_factory("Quanto custa?", page={**PAGE, "url": "/servicos/eletricista/"}))
    assert len(openai_server.requests) == 2


async def test_a_prompt_with_a_profile_is_never_served_to_another_user(
    openai_server, turn_factory, run
):
    openai_server.configure(content="Maria, seu pedido de São Paulo está confirmado.")
    profile = {"first_name": "Maria", "city": "São Paulo"}
    ana = await run(turn_factory("Meu pedido está ok?", user_id=1, user_context=profile))
    # Same question, same profile facts, another user: still not shared.
    bob = await run(turn_factory("Meu pedido está ok?", user_id=2, user_context=profile))
    assert (ana.reply.source, bob.reply.source) == ("ai", "ai")
    assert len(openai_server.requests) == 2
    again = await run(turn_factory("Meu pedido está ok?", user_id=1, user_context=profile))
    assert again.reply.source == "cache"
    assert len(openai_server.requests) == 2


async def test_history_is_personal(openai_server, turn_factory, run):
    history = [HistoryItem("user", "Moro em Recife"), HistoryItem("assistant", "Certo!")]
    await run(turn_factory("E o preço?", history=history, session_id="a"))
    await run(turn_factory("E o preço?", history=history, session_id="b"))
    assert len(openai_server.requests) == 2


async def test_a_turn_with_history_neither_reads_nor_fills_the_cache(
    openai_server, turn_factory, run, monkeypatch
):
    calls: list[str] = []
    real_lookup, real_put = cache.lookup, cache.put

    async def lookup(key: str) -> Any:
        calls.append("get")
        return await real_lookup(key)

    async def put(key: str, text: str, model: str, kb: str) -> None:
        calls.append("put")
        await real_put(key, text, model, kb)

    monkeypatch.setattr(cache, "lookup", lookup)
    monkeypatch.setattr(cache, "put", put)
    history = [HistoryItem("user", "Oi"), HistoryItem("assistant", "Olá!")]
    await run(turn_factory("E o preço?", history=history, session_id="a"))
    assert calls == []
    await run(turn_factory("E o preço?", session_id="a"))  # the first turn still uses it
    assert calls == ["get", "put"]


def test_scope():
    from sophie_chat.ai.base import Turn

    assert cache.scope_for(Turn(session_id="s", text="x")) == ""
    assert cache.scope_for(Turn(session_id="s", text="x", user_id=7)) == ""
    assert cache.scope_for(Turn(session_id="s", text="x", user_context={"a": 1})) == "s:s"
    personal = Turn(session_id="s", text="x", user_id=7, page={"title": "Olá, Maria"})
    assert cache.scope_for(personal) == "u:7"


async def test_ttl_zero_disables_the_cache(openai_server, settings, turn_factory, run):
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "CACHE_TTL": 0}
    await run(turn_factory("Quanto custa?"))
    out = await run(turn_factory("Quanto custa?"))
    assert out.reply.source == "ai"
    assert len(openai_server.requests) == 2


async def test_degraded_answers_are_not_cached(openai_server, settings, turn_factory, run):
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "OPENAI_MAX_RETRIES": 0}
    openai_server.configure(statuses=[500])
    assert (await run(turn_factory("Quanto custa?"))).reply.source == "fallback"
    openai_server.configure(content="um dois três", drop_after=2)
    assert (await run(turn_factory("Quanto custa?"))).reply.error == "stream_dropped"
    openai_server.configure(drop_after=None)
    assert (await run(turn_factory("Quanto custa?"))).reply.source == "ai"
    assert (await run(turn_factory("Quanto custa?"))).reply.source == "cache"
    assert len(openai_server.requests) == 3


async def test_changing_the_knowledge_base_invalidates(openai_server, turn_factory, run):
    await run(turn_factory("Quanto custa?"))
    cache.bump_kb_version()
    out = await run(turn_factory("Quanto custa?"))
    assert out.reply.source == "ai"
    assert len(openai_server.requests) == 2


@pytest.mark.django_db
def test_saving_or_deleting_an_entry_bumps_the_version():
    from asgiref.sync import async_to_sync

    from sophie_chat.models import KnowledgeBaseEntry

    before = async_to_sync(cache.kb_version)()
    entry = KnowledgeBaseEntry.objects.create(slug="x", title="X", content="x")
    middle = async_to_sync(cache.kb_version)()
    entry.delete()
    after = async_to_sync(cache.kb_version)()
    assert before != middle != after


async def test_prompt_version_is_in_the_key(monkeypatch):
    from sophie_chat.ai.base import ChatPrompt

    prompt = ChatPrompt(messages=[{"role": "user", "content": "oi"}])
    key = cache.make_key(prompt, "m", "")
    monkeypatch.setattr(cache, "PROMPT_VERSION", "other")
    assert cache.make_key(prompt, "m", "") != key
    assert cache.make_key(prompt, "m2", "") != key
    assert cache.make_key(prompt, "m", "u:1") != key


async def test_redis_cache_is_shared_and_expires(redis_cache, openai_server, turn_factory, run):
    await run(turn_factory("Quanto custa?"))
    keys = redis_cache.keys(_store.KEY_PREFIX + "r:*")
    assert len(keys) == 1
    assert 0 < redis_cache.ttl(keys[0]) <= 3600
    _store.local.clear()  # another process: nothing local to lean on
    out = await run(turn_factory("Quanto custa?"))
    assert out.reply.source == "cache"
    assert len(openai_server.requests) == 1


async def test_redis_kb_version_is_shared(redis_cache, openai_server, turn_factory, run):
    await run(turn_factory("Quanto custa?"))
    redis_cache.incr(cache.KB_VERSION_KEY)  # another process saved an entry
    assert (await run(turn_factory("Quanto custa?"))).reply.source == "ai"


async def test_redis_down_bypasses_the_cache(openai_server, settings, turn_factory, run):
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "REDIS_URL": "redis://127.0.0.1:1/0"}
    first = await run(turn_factory("Quanto custa?"))
    second = await run(turn_factory("Quanto custa?"))
    assert (first.reply.source, second.reply.source) == ("ai", "ai")
    assert second.elapsed < 1.0  # the breaker keeps later turns from waiting on Redis


# --- the knowledge base version travels in the cached value ------------------------------------


async def test_an_answer_of_an_older_knowledge_base_is_a_miss(
    redis_cache, openai_server, turn_factory, run
):
    # The version travels in the value: one MGET reads both, and a bump by another process is
    # seen on the very next turn.
    await run(turn_factory("Como cancelo um pedido?"))
    assert (await run(turn_factory("Como cancelo um pedido?"))).reply.source == "cache"
    redis_cache.incr(cache.KB_VERSION_KEY)
    assert (await run(turn_factory("Como cancelo um pedido?"))).reply.source == "ai"
    assert (await run(turn_factory("Como cancelo um pedido?"))).reply.source == "cache"


async def test_invalidating_the_knowledge_base_retires_cached_answers(
    openai_server, turn_factory, run
):
    # What a bulk write (QuerySet.update, bulk_create) must call, as the loader does.
    from sophie_chat.knowledge import search

    await run(turn_factory("Como cancelo um pedido?"))
    assert (await run(turn_factory("Como cancelo um pedido?"))).reply.source == "cache"
    search.invalidate()
    assert (await run(turn_factory("Como cancelo um pedido?"))).reply.source == "ai"


async def test_a_first_message_reads_the_cache_ahead_and_the_turn_uses_that_read(
    openai_server, turn_factory, run, monkeypatch
):
    from sophie_chat.ai import pipeline

    openai_server.configure(content="Uma diarista custa a partir de R$ 150.")
    await run(turn_factory("Quanto custa uma diarista?", page=PAGE))  # now cached
    reads: list[str] = []
    real_lookup = cache.lookup

    async def lookup(key: str) -> Any:
        reads.append(key)
        return await real_lookup(key)

    monkeypatch.setattr(cache, "lookup", lookup)
    turn = turn_factory("Quanto custa uma diarista?", page=PAGE)
    prepared = await pipeline.prepare(turn, read_cache=True)
    assert prepared.cache_lookup is not None
    assert prepared.cache_lookup[1].hit is not None
    turn.extra["cache_lookup"] = prepared.cache_lookup
    out = await run(turn)
    assert out.reply.source == "cache"
    assert len(reads) == 1  # the turn itself read nothing more
    assert len(openai_server.requests) == 1


async def test_a_read_ahead_for_another_prompt_is_not_used(
    openai_server, turn_factory, run, monkeypatch
):
    from sophie_chat.ai import pipeline

    openai_server.configure(content="Resposta.")
    ahead = await pipeline.prepare(turn_factory("Quanto custa?", page=PAGE), read_cache=True)
    assert ahead.cache_lookup is not None
    assert ahead.cache_lookup[1].hit is None
    await run(turn_factory("Quanto custa?", page=PAGE))  # cached after the read ahead
    # The same question on another page is another prompt: the early read is not taken for it.
    turn = turn_factory("Quanto custa?", page={**PAGE, "url": "/outra/"})
    turn.extra["cache_lookup"] = (ahead.cache_lookup[0], cache.Lookup({"text": "velha"}, "0"))
    out = await run(turn)
    assert out.reply.source == "ai"


async def test_no_read_ahead_for_a_personal_prompt_or_unless_asked(openai_server, turn_factory):
    from sophie_chat.ai import pipeline

    personal = turn_factory("Quanto custa?", user_id=7, user_context={"first_name": "Ana"})
    assert (await pipeline.prepare(personal, read_cache=True)).cache_lookup is None
    assert (await pipeline.prepare(turn_factory("Quanto custa?"))).cache_lookup is None
