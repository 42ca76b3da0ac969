"""Stand-in turn pipeline; the AI pipeline issue replaces it with the real one."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sophie_chat.ai.base import Delta, Reply, Turn


async def reply(turn: Turn) -> AsyncIterator[Delta | Reply]:
    """Yield the answer's deltas, then one final :class:`Reply`."""
    words = f"Você disse: {turn.text}".split(" ")
    for i, word in enumerate(words):
        yield Delta(word if i == 0 else " " + word)
    yield Reply(text=" ".join(words), source="fallback", model="echo")
