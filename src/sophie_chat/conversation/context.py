"""Stand-in user context; the knowledge issue replaces it."""

from __future__ import annotations

from typing import Any


def default_user_type(user: Any) -> str:
    """Return "anonymous", "staff", "provider" or "client" for a user."""
    if user is None or not getattr(user, "is_authenticated", False):
        return "anonymous"
    return "client"
