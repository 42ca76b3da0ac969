"""The SDK's transport: which one is used, and that its clients close with their event loop."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from typing import Any

import httpx2
import openai
import pytest

from sophie_chat.ai import transport
from sophie_chat.ai.base import ChatPrompt, Turn
from sophie_chat.ai.openai import OpenAIBackend
from sophie_chat.ai.transport import aiohttp_available, get_client, http_transport
from tests.conftest import TRANSPORTS


class _MissingAioHttpClient(httpx2.AsyncClient):
    """What the SDK defines as DefaultAioHttpClient without the ``aiohttp`` extra."""

    def __init__(self, **_kwargs: Any) -> None:
        raise RuntimeError("install openai[aiohttp]")


def test_aiohttp_is_installed_and_recognised(monkeypatch: pytest.MonkeyPatch) -> None:
    assert aiohttp_available()  # openai[aiohttp] is a dependency
    monkeypatch.setattr(openai, "DefaultAioHttpClient", _MissingAioHttpClient)
    assert not aiohttp_available()
    monkeypatch.delattr(openai, "DefaultAioHttpClient")
    assert not aiohttp_available()


@pytest.mark.parametrize(
    ("setting", "installed", "expected"),
    [
        ("auto", True, "aiohttp"),
        ("auto", False, "httpx"),
        ("aiohttp", True, "aiohttp"),
        ("httpx", True, "httpx"),
        ("requests", True, "httpx"),  # sophie_chat.E005 reports it
    ],
)
def test_the_setting_picks_the_transport(
    monkeypatch: pytest.MonkeyPatch, settings: Any, setting: str, installed: bool, expected: str
) -> None:
    monkeypatch.setattr(transport, "aiohttp_available", lambda: installed)
    settings.CHAT_CONFIG = {"OPENAI_HTTP_CLIENT": setting}
    assert http_transport() == expected


def test_aiohttp_asked_for_but_missing_falls_back_to_httpx_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(transport, "aiohttp_available", lambda: False)
    monkeypatch.setattr(transport, "_warned_missing", False)
    assert [http_transport("aiohttp") for _ in range(3)] == ["httpx"] * 3
    assert capsys.readouterr().out.count("openai_aiohttp_missing") == 1


async def _one_turn(base_url: str, chosen: str) -> openai.AsyncOpenAI:
    client = get_client("sk-test-loop", base_url, 3.0, transport=chosen)
    async with client.chat.completions.with_streaming_response.create(
        model="m", messages=[{"role": "user", "content": "oi"}], stream=True
    ) as response:
        async for _ in response.iter_lines():
            pass
    return client


@pytest.mark.parametrize("chosen", TRANSPORTS)
def test_clients_close_with_their_event_loop(
    openai_server: Any, chosen: str, capfd: pytest.CaptureFixture[str]
) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def turn() -> openai.AsyncOpenAI:
        loops.append(asyncio.get_running_loop())
        return await _one_turn(openai_server.base_url, chosen)

    # Nobody calls close_clients(): asyncio.run() ends the loop, as a worker's end does.
    client = asyncio.run(turn())
    assert client.is_closed()
    assert loops[0] not in transport._loops
    err = capfd.readouterr().err
    assert "Unclosed" not in err


async def test_close_clients_closes_and_forgets_them(openai_server: Any) -> None:
    client = await _one_turn(openai_server.base_url, "aiohttp")
    await transport.close_clients()
    assert client.is_closed()
    assert get_client("sk-test-loop", openai_server.base_url, 3.0, "aiohttp") is not client
    await transport.close_clients()


# A worker process: one turn through the backend on aiohttp, then the process ends the way
# its server ends it, with no ASGI lifespan event and nobody calling close_clients().
WORKER = """
import asyncio, sys
import django
from django.conf import settings

settings.configure(CHAT_CONFIG={{
    "OPENAI_API_KEY": "sk-test-worker", "OPENAI_BASE_URL": {base_url!r},
    "OPENAI_HTTP_CLIENT": "aiohttp",
}})
django.setup()
from sophie_chat.ai.base import ChatPrompt, Turn
from sophie_chat.ai.openai import OpenAIBackend

async def turn():
    prompt = ChatPrompt(messages=[{{"role": "user", "content": "oi"}}])
    text = [p async for p in OpenAIBackend().stream(prompt, Turn(session_id="s", text="oi"))]
    print("answered", bool(text), flush=True)

if sys.argv[1] == "asyncio.run":  # uvicorn, hypercorn, gunicorn's uvicorn worker
    asyncio.run(turn())
else:  # daphne: Twisted stops its loop and the process exits, the loop never closed
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(turn())
"""


@pytest.mark.parametrize("ending", ["asyncio.run", "loop-stopped"])
def test_a_worker_process_ends_without_an_error(openai_server: Any, ending: str) -> None:
    script = textwrap.dedent(WORKER.format(base_url=openai_server.base_url))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTHON"))}
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", script, ending],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "answered True", done.stderr
    # -W default shows ResourceWarnings too; nothing at all may be printed.
    assert done.stderr == ""
    assert done.returncode == 0


async def test_a_failed_turn_leaves_no_open_connection(openai_server: Any, settings: Any) -> None:
    # A garbled answer on aiohttp: the connection is dropped, not kept for the next request.
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "OPENAI_HTTP_CLIENT": "aiohttp"}
    openai_server.configure(garbled=True)
    prompt = ChatPrompt(messages=[{"role": "user", "content": "oi"}])
    with pytest.raises(openai.APIConnectionError):
        async for _ in OpenAIBackend().stream(prompt, Turn(session_id="s", text="oi")):
            pass
    openai_server.configure(garbled=False)
    text = [p async for p in OpenAIBackend().stream(prompt, Turn(session_id="s", text="oi"))]
    assert "".join(text) == openai_server.behaviour.content
    assert openai_server.connections == 2
