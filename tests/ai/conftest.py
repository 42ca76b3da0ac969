"""Helpers of the AI tests: run a turn through the pipeline and collect what it yields."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sophie_chat.ai.base import Delta, Reply, Turn


class Outcome:
    def __init__(self, deltas: list[str], reply: Reply, elapsed: float) -> None:
        self.deltas = deltas
        self.reply = reply
        self.elapsed = elapsed

    @property
    def text(self) -> str:
        return "".join(self.deltas)


async def run_turn(turn: Turn) -> Outcome:
    """Run ``turn`` through the pipeline; check the one-Reply-at-the-end contract on the way."""
    from sophie_chat.ai.pipeline import reply

    deltas: list[str] = []
    final: Reply | None = None
    started = time.monotonic()
    async for item in reply(turn):
        assert final is None, "nothing may follow the Reply"
        if isinstance(item, Delta):
            deltas.append(item.text)
        else:
            assert isinstance(item, Reply)
            final = item
    assert final is not None
    assert "".join(deltas) == final.text
    return Outcome(deltas, final, time.monotonic() - started)


@pytest.fixture
def turn_factory() -> Callable[..., Turn]:
    """``turn_factory(text="oi", user_id=3)``: a Turn with no knowledge lookup by default."""
    counter = {"n": 0}

    def make(text: str = "Como funciona o site?", **fields: Any) -> Turn:
        counter["n"] += 1
        fields.setdefault("session_id", f"00000000-0000-0000-0000-{counter['n']:012d}")
        fields.setdefault("extra", {"knowledge": []})
        return Turn(text=text, **fields)

    return make


@pytest.fixture
def run() -> Callable[[Turn], Awaitable[Outcome]]:
    return run_turn
