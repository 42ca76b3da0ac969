"""Every AI failure ends in a fallback answer, within the configured time.

The tests of the OpenAI backend's failures run on both SDK transports (``sdk_transport``): each
failure must be classified the same on httpx and on aiohttp.
"""

from __future__ import annotations

import pytest

from sophie_chat.ai import fallbacks

FAST = {"OPENAI_TIMEOUT": 1.5, "OPENAI_FIRST_TOKEN_TIMEOUT": 1.0, "OPENAI_MAX_RETRIES": 0}
KNOWLEDGE = [
    {
        "slug": "diarista",
        "title": "Diarista",
        "content": "Uma diária de limpeza custa a partir de R$ 150.",
        "url": "/servicos/diarista/",
        "category": "service",
    }
]


@pytest.fixture
def fast(settings, openai_server, sdk_transport):
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, **FAST}
    return openai_server


@pytest.mark.parametrize(
    ("behaviour", "kind", "budget"),
    [
        # Immediate failures within the overall timeout (1.5 s; no SDK backoff, no retry-after
        # wait); hangs end at the first-token timeout (1 s). The slack is for a loaded CI
        # machine: the SDK's own default would be 600 s.
        ({"status": 429, "retry_after": 0}, "rate_limited", 1.4),
        ({"status": 500}, "server_error", 1.4),
        ({"status": 503, "retry_after": 30}, "server_error", 1.4),
        ({"hang": 5}, "timeout", 2.5),
        ({"ttft": 5}, "timeout", 2.5),
        ({"malformed_after": 0}, "malformed", 1.4),
        ({"disconnect": True}, "connection", 1.4),
        ({"garbled": True}, "connection", 1.4),
    ],
    ids=[
        "429",
        "500",
        "503",
        "hang",
        "slow-first-token",
        "malformed",
        "server-hangs-up",
        "garbled-response",
    ],
)
async def test_failure_before_any_text_answers_from_the_knowledge_base(
    fast, turn_factory, run, behaviour, kind, budget
):
    fast.configure(**behaviour)
    out = await run(turn_factory("Quanto custa uma diarista?", extra={"knowledge": KNOWLEDGE}))
    r = out.reply
    assert (r.source, r.error, r.degraded) == ("fallback", kind, True)
    assert r.notice == r.metadata["notice"] == fallbacks.NOTICE["pt"]
    assert "R$ 150" in r.text
    assert "/servicos/diarista/" in r.text
    print(f"\n{kind} fallback in {out.elapsed * 1000:.0f} ms")
    assert out.elapsed < budget, f"{kind} fallback took {out.elapsed:.2f}s"
    assert len(fast.requests) == 1


async def test_stall_mid_stream_is_bounded_by_the_overall_timeout(fast, turn_factory, run):
    fast.configure(content="um dois três quatro cinco seis sete oito", tokens_per_second=2)
    out = await run(turn_factory())
    assert out.reply.error == "timeout"
    print(f"\nmid-stream stall fallback in {out.elapsed * 1000:.0f} ms")
    assert out.elapsed < 3.0
    assert out.reply.text.startswith("um dois")
    assert fallbacks.SEPARATOR in out.reply.text


async def test_drop_mid_stream_keeps_the_partial_text_then_the_fallback(fast, turn_factory, run):
    fast.configure(content="Para contratar, primeiro escolha o serviço e depois", drop_after=3)
    out = await run(turn_factory("Como contrato?", extra={"knowledge": KNOWLEDGE}))
    r = out.reply
    assert (r.source, r.error, r.degraded) == ("fallback", "stream_dropped", True)
    partial, _, rest = r.text.partition(fallbacks.SEPARATOR)
    assert partial == "Para contratar, primeiro"
    assert "Diarista" in rest
    print(f"\nstream_dropped fallback in {out.elapsed * 1000:.0f} ms")
    assert out.elapsed < 1.4


async def test_malformed_chunk_mid_stream(fast, turn_factory, run):
    fast.configure(content="uma resposta que vai quebrar no meio", malformed_after=2)
    out = await run(turn_factory())
    assert out.reply.error == "malformed"
    assert out.reply.text.startswith("uma resposta" + fallbacks.SEPARATOR)


async def test_error_event_mid_stream(fast, turn_factory, run):
    # An error event inside a 200 stream: the server gave up; nothing says a retry would help.
    fast.configure(content="uma resposta que vai falhar no meio", error_after=2)
    out = await run(turn_factory())
    assert (out.reply.source, out.reply.error) == ("fallback", "other")
    assert out.reply.text.startswith("uma resposta" + fallbacks.SEPARATOR)


async def test_a_stream_that_ends_without_a_finish_reason_was_cut(fast, turn_factory, run):
    # A clean end of the body but no finish reason and no [DONE]: a proxy cut it short.
    fast.configure(content="uma resposta cortada por um proxy", finish=False)
    out = await run(turn_factory())
    assert (out.reply.source, out.reply.error) == ("fallback", "stream_dropped")
    assert out.reply.text.startswith("uma resposta cortada por um proxy" + fallbacks.SEPARATOR)


@pytest.mark.usefixtures("sdk_transport")
async def test_connection_refused(settings, turn_factory, run):
    settings.CHAT_CONFIG = {
        **settings.CHAT_CONFIG,
        **FAST,
        "AI_BACKEND": "sophie_chat.ai.openai.OpenAIBackend",
        "OPENAI_API_KEY": "sk-test-x",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
    }
    out = await run(turn_factory())
    assert (out.reply.source, out.reply.error) == ("fallback", "connection")
    print(f"\nconnection fallback in {out.elapsed * 1000:.0f} ms")
    assert out.elapsed < 0.9


async def test_missing_key_with_the_openai_backend(fast, settings, turn_factory, run):
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "OPENAI_API_KEY": ""}
    out = await run(turn_factory("Hi", language="en"))
    assert (out.reply.source, out.reply.error, out.reply.degraded) == ("fallback", "no_key", True)
    assert out.reply.notice == fallbacks.NOTICE["en"]
    assert fast.requests == []


async def test_english_fallback_without_knowledge(fast, turn_factory, run):
    fast.configure(status=500)
    out = await run(turn_factory("Something odd happened", language="en"))
    assert out.reply.text.startswith(fallbacks.GENERIC["en"][:30])


async def test_no_retry_when_retry_after_is_past_the_deadline(fast, settings, turn_factory, run):
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "OPENAI_MAX_RETRIES": 3}
    fast.configure(status=429, retry_after=30)
    out = await run(turn_factory())
    assert out.reply.error == "rate_limited"
    assert len(fast.requests) == 1
    assert out.elapsed < 0.9


async def test_retries_stop_at_the_first_token_deadline(fast, settings, turn_factory, run):
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "OPENAI_MAX_RETRIES": 50}
    fast.configure(status=500)
    out = await run(turn_factory())
    assert out.reply.error == "server_error"
    assert 2 < len(fast.requests) < 15  # backed off 0.1, 0.2, 0.4 s... then gave up
    assert out.elapsed < 1.2


async def test_a_broken_prompt_template_still_answers(fast, settings, turn_factory, run):
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "PROMPT_TEMPLATE": "missing/template.txt"}
    out = await run(turn_factory("Oi"))
    assert (out.reply.source, out.reply.error, out.reply.degraded) == ("fallback", "other", True)
    assert fast.requests == []


@pytest.mark.parametrize(
    ("whatsapp", "link"),
    [
        ("https://wa.me/5511400000000", "(https://wa.me/5511400000000)"),
        ("+55 11 4000-0000", "(https://wa.me/551140000000)"),
    ],
)
def test_whatsapp_contact_opens_a_chat_not_a_phone_call(whatsapp: str, link: str) -> None:
    block = fallbacks.contact_block("pt-br", {"whatsapp": whatsapp, "phone": "+55 11 4000-0000"})

    whatsapp_line = next(line for line in block.splitlines() if "WhatsApp" in line)
    assert link in whatsapp_line
    assert "tel:" not in whatsapp_line
    assert "(tel:+551140000000)" in block
