"""Stand-in escalation decision; the analytics issue replaces it."""

from __future__ import annotations

from typing import Any


def decide(text: str, intent: str, state: dict[str, Any]) -> dict[str, Any] | None:
    """Return ``{"reason": ..., "contacts": {...}}`` when a human should take over, else None."""
    return None
