"""The small interface between the conversation layer and whatever writes the answers.

The conversation service builds a :class:`Turn` and iterates :func:`sophie_chat.ai.pipeline.reply`
over it: it yields :class:`Delta` objects while the answer streams and ends with exactly one
:class:`Reply`. Nothing here knows about WebSockets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Source = Literal["ai", "cache", "fallback"]


@dataclass(frozen=True)
class HistoryItem:
    role: Literal["user", "assistant"]
    content: str


@dataclass
class Turn:
    """Everything the AI layer may know about one user message."""

    session_id: str
    text: str
    language: str = "pt-br"
    user_type: str = "anonymous"
    user_id: int | None = None
    intent: str = "other"
    history: list[HistoryItem] = field(default_factory=list)
    # Navigation context reported by the widget: url, title, referrer, status.
    page: dict[str, Any] = field(default_factory=dict)
    # Safe profile facts of the logged-in user (name, city...), from the context provider.
    user_context: dict[str, Any] = field(default_factory=dict)
    # Free slot for later stages (knowledge entries picked, consecutive fallbacks, ...).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Delta:
    """A piece of the answer's text, in order."""

    text: str


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False


@dataclass
class Reply:
    """The final answer of a turn. ``text`` is the whole answer as stored."""

    text: str
    source: Source = "ai"
    model: str = ""
    usage: Usage = field(default_factory=Usage)
    # Set when the answer is degraded: "timeout", "rate_limited", "server_error", ...
    error: str = ""
    degraded: bool = False
    # A short note for the user in their language when degraded ("reduced mode"), else "".
    notice: str = ""
    citations: list[dict[str, str]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatPrompt:
    """What a backend sends to a model: the fully built message list."""

    messages: list[dict[str, str]]
    max_tokens: int = 600
    temperature: float = 0.3


class Backend(Protocol):
    """An answer writer. ``stream`` yields text deltas and returns usage through ``last_usage``.

    The pipeline makes a new instance for every attempt, so ``last_usage`` (``None`` until the
    server reports it) belongs to one call. Raise an exception to fail: the pipeline classifies it
    (:func:`sophie_chat.ai.errors.classify_ai_error`), retries before the first delta when that
    makes sense, and otherwise answers with a fallback.
    """

    name: str
    last_usage: Usage | None

    def stream(self, prompt: ChatPrompt, turn: Turn) -> AsyncIterator[str]: ...
