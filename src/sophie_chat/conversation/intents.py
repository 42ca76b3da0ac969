"""Stand-in intent classifier; the AI pipeline issue replaces it."""

from __future__ import annotations


def classify(text: str, language: str = "pt-br") -> str:
    """Return the intent name of a user message."""
    return "other"
