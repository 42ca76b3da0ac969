"""Shared fixtures. Subpackages keep their own fixtures in their own conftest.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model


@pytest.fixture
def user_factory(db: None) -> Callable[..., Any]:
    """Make users: ``user_factory(username="ana", is_staff=True)``."""
    counter = {"n": 0}

    def make(**fields: Any) -> Any:
        counter["n"] += 1
        fields.setdefault("username", f"user{counter['n']}")
        password = fields.pop("password", "pw")
        user = get_user_model().objects.create_user(password=password, **fields)
        return user

    return make


@pytest.fixture
def chat_session_factory(db: None) -> Callable[..., Any]:
    """Make chat sessions: ``chat_session_factory(user=u, status="closed")``."""
    from sophie_chat.models import ChatSession

    def make(**fields: Any) -> ChatSession:
        return ChatSession.objects.create(**fields)

    return make
