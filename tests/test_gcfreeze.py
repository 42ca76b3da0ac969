"""GC_FREEZE: the worker's long-lived objects frozen for the garbage collector, twice at most."""

# ruff: noqa: F811 - fixtures imported from tests/conversation/conftest.py are parameters here

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from sophie_chat import gcfreeze
from tests.conversation.conftest import chat, fake_ai  # noqa: F401 - fixtures


@pytest.fixture
def frozen_for_the_test(settings: Any) -> Iterator[None]:
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "GC_FREEZE": True}
    gcfreeze.forget()
    yield
    gc.unfreeze()  # the test process's objects go back to the collector
    gcfreeze.forget()


def test_each_moment_freezes_once(frozen_for_the_test: None) -> None:
    before = gc.get_freeze_count()
    assert gcfreeze.at_startup()
    assert gc.get_freeze_count() > before
    assert not gcfreeze.at_startup()  # once per process
    assert gcfreeze.after_first_turn()
    assert not gcfreeze.after_first_turn()


def test_off_leaves_the_collector_alone(settings: Any) -> None:
    settings.CHAT_CONFIG = {**settings.CHAT_CONFIG, "GC_FREEZE": False}
    gcfreeze.forget()
    before = gc.get_freeze_count()
    assert not gcfreeze.at_startup()
    assert not gcfreeze.after_first_turn()
    assert gc.get_freeze_count() == before


def test_the_asgi_application_freezes_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    from sophie_chat import routing

    moments: list[str] = []
    monkeypatch.setattr(gcfreeze, "freeze", lambda moment: moments.append(moment) or True)
    routing.get_asgi_application()
    assert moments == ["startup"]


@pytest.mark.django_db(transaction=True)
async def test_the_first_answer_freezes(
    chat: Any, fake_ai: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    moments: list[str] = []
    monkeypatch.setattr(gcfreeze, "freeze", lambda moment: moments.append(moment) or True)
    c = await chat()
    await c.turn("oi")
    assert moments == ["first_turn"]
