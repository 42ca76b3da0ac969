"""Daily token budget per user."""

from __future__ import annotations

import pytest
import redis

from sophie_chat.ai import _store, fallbacks


@pytest.fixture
def budget(openai_server, settings):
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "DAILY_TOKEN_BUDGET": 100, "CACHE_TTL": 0}
    openai_server.configure(content="resposta", usage=True)
    return openai_server


async def test_a_spent_budget_switches_to_the_offline_answer(budget, turn_factory, run):
    first = await run(turn_factory("Quanto custa?", user_id=5))
    assert first.reply.source == "ai"
    assert first.reply.usage.prompt_tokens > 100  # the system prompt alone spends the budget
    out = await run(turn_factory("Quanto custa?", user_id=5))
    assert (out.reply.source, out.reply.error, out.reply.degraded) == ("fallback", "budget", True)
    assert out.reply.notice == fallbacks.BUDGET_NOTICE["pt"]
    assert len(budget.requests) == 1
    # Someone else still has theirs.
    assert (await run(turn_factory("Quanto custa?", user_id=6))).reply.source == "ai"


async def test_zero_means_unlimited(openai_server, turn_factory, run):
    for _ in range(3):
        out = await run(turn_factory("Quanto custa?", user_id=5))
        assert out.reply.error == ""


async def test_budget_in_redis(budget, settings, turn_factory, run):
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "REDIS_URL": "redis://127.0.0.1:6379/14"}
    _store.clear_all()
    await run(turn_factory("Quanto custa?", user_id=9))
    client = redis.Redis.from_url("redis://127.0.0.1:6379/14")
    keys = client.keys(_store.KEY_PREFIX + "budget:*:u:9")
    assert len(keys) == 1
    assert int(client.get(keys[0])) > 100
    assert client.ttl(keys[0]) > 0
    _store.local.clear()
    assert (await run(turn_factory("Quanto custa?", user_id=9))).reply.error == "budget"
    _store.clear_all()
