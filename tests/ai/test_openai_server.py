"""The loopback OpenAI-compatible server itself, in-process and as a standalone process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import openai
import pytest

from tests.openai_server import ECHO, _tokens


def test_tokens_concatenate_back():
    for text in ("", "a", " a b  c ", "Olá, mundo!\n\nLinha 2 "):
        assert "".join(_tokens(text)) == text


async def test_non_streaming_echo_and_script(openai_server):
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=openai_server.base_url, max_retries=0)
    openai_server.configure(content=ECHO, script={"preço": "Depende do serviço."})
    messages = [{"role": "user", "content": "repita isto"}]
    result = await client.chat.completions.create(model="m", messages=messages)
    assert result.choices[0].message.content == "repita isto"
    assert result.usage is not None
    messages = [{"role": "user", "content": "Qual o PREÇO?"}]
    result = await client.chat.completions.create(model="m", messages=messages)
    assert result.choices[0].message.content == "Depende do serviço."
    assert len(openai_server.requests) == 2
    await client.close()


async def test_content_may_be_a_function_of_the_request(openai_server):
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=openai_server.base_url, max_retries=0)
    openai_server.configure(content=lambda body: f"{len(body['messages'])} mensagens")
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    stream = await client.chat.completions.create(model="m", messages=messages, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "2 mensagens"
    await client.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture
def standalone():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.openai_server", "--port", str(port), "--content", "oi"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "OpenAI test server on" in proc.stdout.readline()
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(5)
        proc.stdout.close()


def test_standalone_process_with_its_control_api(standalone):
    client = openai.OpenAI(api_key="sk-test", base_url=standalone + "/v1", max_retries=0)
    messages = [{"role": "user", "content": "olá"}]
    assert (
        client.chat.completions.create(model="m", messages=messages).choices[0].message.content
        == "oi"
    )
    _post(standalone + "/_control", {"status": 429, "retry_after": 1})
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="m", messages=messages)
    assert time.monotonic() - started < 1
    with urllib.request.urlopen(standalone + "/_requests", timeout=5) as response:
        assert len(json.loads(response.read())["requests"]) == 2
    _post(standalone + "/_reset", {})  # back to the command line's behaviour
    result = client.chat.completions.create(model="m", messages=messages)
    assert result.choices[0].message.content == "oi"
    client.close()
