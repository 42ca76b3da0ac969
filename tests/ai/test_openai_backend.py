"""The OpenAI backend through the pipeline, over real HTTP to the loopback test server.

Every test runs on both SDK transports (``sdk_transport``: httpx and aiohttp).
"""

from __future__ import annotations

import asyncio
import time

import openai
import pytest

from sophie_chat.ai.base import Delta
from sophie_chat.ai.pipeline import reply
from sophie_chat.ai.transport import get_client

pytestmark = pytest.mark.usefixtures("sdk_transport")


async def test_streams_deltas_that_make_the_answer_and_records_usage(
    openai_server, turn_factory, run
):
    openai_server.configure(content="Olá! Posso ajudar com **limpeza** e reparos.")
    out = await run(turn_factory("Oi, o que vocês fazem?"))
    assert len(out.deltas) > 3
    assert out.reply.text == "Olá! Posso ajudar com **limpeza** e reparos."
    assert out.reply.source == "ai"
    assert not out.reply.degraded
    assert out.reply.usage.completion_tokens == 7
    assert out.reply.usage.prompt_tokens > 0
    assert not out.reply.usage.estimated
    assert out.reply.metadata["first_token_ms"] >= 0
    body = openai_server.requests[0]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][-1] == {"role": "user", "content": "Oi, o que vocês fazem?"}


async def test_usage_is_estimated_when_the_server_sends_none(openai_server, turn_factory, run):
    openai_server.configure(content="Uma resposta de teste com algumas palavras.", usage=False)
    out = await run(turn_factory())
    assert out.reply.usage.estimated
    assert out.reply.usage.completion_tokens == len(out.reply.text) // 4 + 1
    assert out.reply.usage.prompt_tokens > 0


async def test_max_tokens_temperature_and_prompt_size_are_capped(
    openai_server, turn_factory, run, settings
):
    settings.CHAT_CONFIG = {
        **settings.CHAT_CONFIG,
        "MAX_TOKENS": 77,
        "TEMPERATURE": 0.1,
        "MAX_PROMPT_CHARS": 3000,
        "MAX_MESSAGE_LENGTH": 500,
    }
    long_entries = [
        {"slug": f"e{i}", "title": f"Entrada {i}", "content": "texto " * 300, "url": "/x/"}
        for i in range(3)
    ]
    turn = turn_factory("pergunta " * 200, extra={"knowledge": long_entries})
    await run(turn)
    body = openai_server.requests[0]
    assert body["max_tokens"] == 77
    assert body["temperature"] == 0.1
    assert sum(len(m["content"]) for m in body["messages"]) <= 3000
    assert len(body["messages"][-1]["content"]) == 500


async def test_one_client_per_loop_and_config(openai_server, sdk_transport):
    a = get_client("sk-test-a", openai_server.base_url, 3.0)
    assert get_client("sk-test-a", openai_server.base_url, 3.0) is a
    assert get_client("sk-test-b", openai_server.base_url, 3.0) is not a
    other = "httpx" if sdk_transport == "aiohttp" else "aiohttp"
    assert get_client("sk-test-a", openai_server.base_url, 3.0, transport=other) is not a
    # The configured transport is the one the client really sends through.
    assert isinstance(a._client, openai.DefaultAioHttpClient) == (sdk_transport == "aiohttp")


async def test_retries_a_429_then_answers(openai_server, turn_factory, run, settings):
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "OPENAI_MAX_RETRIES": 2}
    openai_server.configure(statuses=[429, 500], retry_after=0, content="Resposta depois.")
    out = await run(turn_factory())
    assert out.reply.source == "ai"
    assert out.reply.text == "Resposta depois."
    assert len(openai_server.requests) == 3
    assert out.reply.metadata["attempts"] == 3


async def test_no_retry_after_the_first_delta(openai_server, turn_factory, run, settings):
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "OPENAI_MAX_RETRIES": 3}
    openai_server.configure(content="um dois três quatro cinco seis", drop_after=2)
    out = await run(turn_factory())
    assert len(openai_server.requests) == 1
    assert out.reply.error == "stream_dropped"


async def _server_sees_a_closed_stream(server, within: float) -> None:
    """The server's writes fail on the stream's connection within ``within`` seconds."""
    started = time.monotonic()
    for _ in range(1000):
        if server.client_closed_streams or time.monotonic() - started > within:
            break
        await asyncio.sleep(0.02)
    assert server.client_closed_streams == 1


async def test_cancel_closes_the_upstream_stream(openai_server, turn_factory, run):
    openai_server.configure(content="palavra " * 200, tokens_per_second=50)
    gen = reply(turn_factory())
    first = await gen.__anext__()
    assert isinstance(first, Delta)
    await gen.aclose()  # what a stopped consumer does
    # The server writes every 20 ms and notices the closed connection on its next write. A
    # connection put back in the pool half-read would stay open until the pool's keep-alive
    # expiry (5 s): 2.5 s tells the two apart even on a loaded machine.
    await _server_sees_a_closed_stream(openai_server, within=2.5)
    assert len(openai_server.requests) == 1
    # The next turn gets a connection of its own and a clean answer, not the rest of the last.
    openai_server.configure(content="Resposta nova.", tokens_per_second=0)
    out = await run(turn_factory())
    assert (out.reply.source, out.reply.text) == ("ai", "Resposta nova.")
    assert openai_server.connections == 2


async def test_cancelling_the_task_propagates(openai_server, turn_factory):
    openai_server.configure(content="palavra " * 200, tokens_per_second=50)
    started = asyncio.Event()

    async def consume() -> None:
        async for item in reply(turn_factory()):
            if isinstance(item, Delta):
                started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _server_sees_a_closed_stream(openai_server, within=2.5)


async def test_a_finished_stream_reuses_its_connection(openai_server, turn_factory, run):
    # The other side of the two tests above: a stream read to its end goes back to the pool.
    for question in ("Como pago?", "Como cancelo?"):  # two questions: no answer from the cache
        out = await run(turn_factory(question))
        assert out.reply.source == "ai"
    assert len(openai_server.requests) == 2
    assert openai_server.connections == 1


async def test_a_body_that_lingers_after_done_still_ends_the_answer(
    openai_server, turn_factory, run
):
    # The answer is complete at [DONE]; the backend waits only briefly for the body's end.
    openai_server.configure(content="Resposta completa.", end_delay=5)
    out = await run(turn_factory())
    assert (out.reply.source, out.reply.text, out.reply.error) == ("ai", "Resposta completa.", "")
    assert out.elapsed < 1.5


@pytest.mark.parametrize(
    ("behaviour", "kind"),
    [
        ({"disconnect": True}, "connection"),
        ({"garbled": True}, "connection"),
        ({"status": 503}, "server_error"),
    ],
    ids=["server-hangs-up", "garbled-response", "503"],
)
async def test_a_failure_before_the_first_delta_is_retried(
    openai_server, turn_factory, run, settings, behaviour, kind
):
    # A refused, hung-up or garbled connection is a "connection" failure on both transports
    # (the aiohttp adapter calls the first two a connect timeout): worth the retry.
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "OPENAI_MAX_RETRIES": 1}
    openai_server.configure(**behaviour)
    out = await run(turn_factory())
    assert (out.reply.source, out.reply.error) == ("fallback", kind)
    assert len(openai_server.requests) == 2
