"""The real pipeline behind the real chat WebSocket, against the loopback OpenAI server.

The tests that reach the model run on both SDK transports (``sdk_transport``).
"""
# ruff: noqa: F811 - fixtures imported from tests/conversation/conftest.py are parameters here

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from sophie_chat.ai import fallbacks
from sophie_chat.models import ChatMessage, KnowledgeBaseEntry
from tests.conversation.conftest import _fresh_limits, chat, chat_config  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
PAGE = {"url": "http://testserver/servicos/", "title": "Serviços", "referrer": "", "status": 200}


@database_sync_to_async
def stored(seq: int) -> ChatMessage:
    return ChatMessage.objects.get(seq=seq, sender="assistant")


@database_sync_to_async
def add_diarista() -> None:
    KnowledgeBaseEntry.objects.create(
        slug="diarista",
        title="Diarista",
        category="service",
        content="A diária de uma diarista custa em média R$ 150 (8 horas).",
        keywords="diarista, faxina, limpeza, preço",
        url="/servicos/diarista/",
    )


@pytest.mark.usefixtures("sdk_transport")
async def test_an_ai_answer_streams_renders_and_is_stored(openai_server, chat):
    openai_server.configure(
        content="Uma diarista custa **R$ 150** por dia. Veja [Diarista](/servicos/diarista/).",
        tokens_per_second=200,
    )
    c = await chat()
    id = await c.message("Quanto custa uma diarista?", page=PAGE)
    ack = await c.until("ack", id=id)
    done = await c.until("assistant.done", seq=ack["seq"] + 1)
    deltas = [f["text"] for f in c.frames if f["type"] == "assistant.delta"]
    assert "".join(deltas) == done["text"]
    assert done["source"] == "ai"
    assert done["intent"] == "pricing"
    assert "<strong>R$ 150</strong>" in done["html"]
    assert 'rel="noopener noreferrer nofollow"' in done["html"]
    message = await stored(done["seq"])
    assert message.content == done["text"]
    assert message.metadata["tokens_out"] > 0
    body = openai_server.requests[0]
    assert body["messages"][-1]["content"] == "Quanto custa uma diarista?"
    assert "URL: /servicos/" in body["messages"][0]["content"]


@pytest.mark.usefixtures("sdk_transport")
async def test_an_upstream_failure_ends_in_a_degraded_fallback(openai_server, chat, chat_config):
    chat_config(OPENAI_MAX_RETRIES=0)
    openai_server.configure(status=503)
    c = await chat()
    _, done = await c.turn("Quanto custa uma diarista?")
    assert done["source"] == "fallback"
    assert done["degraded"] is True
    assert done["notice"] == fallbacks.NOTICE["pt"]
    assert (await stored(done["seq"])).metadata["error"] == "server_error"


async def test_offline_answer_links_to_the_service(chat, chat_config):
    chat_config(OPENAI_API_KEY="", AI_BACKEND=None)
    await add_diarista()
    c = await chat()
    _, done = await c.turn("Quanto custa uma diarista?")
    assert done["source"] == "fallback"
    assert "degraded" not in done
    assert "R$ 150" in done["text"]
    assert '<a href="/servicos/diarista/" target="_blank"' in done["html"]


@pytest.mark.usefixtures("sdk_transport")
async def test_stop_closes_the_upstream_request(openai_server, chat):
    openai_server.configure(content="palavra " * 300, tokens_per_second=40)
    c = await chat()
    await c.message("Conte uma história longa")
    await c.until("assistant.delta")
    await c.send(type="stop")
    done = await c.until("assistant.done")
    assert done["status"] == "stopped"
    for _ in range(100):
        if openai_server.client_closed_streams:
            break
        await asyncio.sleep(0.02)
    assert openai_server.client_closed_streams == 1


@pytest.mark.usefixtures("sdk_transport")
async def test_cache_across_visitors_over_the_socket(openai_server, chat: Any):
    openai_server.configure(content="Resposta compartilhável.")
    for _ in range(2):
        c = await chat()
        _, done = await c.turn("Como funciona o pagamento?")
    assert done["source"] == "cache"
    assert len(openai_server.requests) == 1
