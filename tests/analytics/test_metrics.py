from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from sophie_chat.analytics import metrics


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_turn_metrics() -> None:
    before = value("sophie_chat_turns_total", source="cache")
    hist_before = value("sophie_chat_first_token_seconds_count")
    metrics.observe_turn(source="cache", first_token_ms=12, response_ms=40)
    metrics.observe_turn(source="cache", first_token_ms=None, response_ms="bad")
    assert value("sophie_chat_turns_total", source="cache") == before + 2
    assert value("sophie_chat_first_token_seconds_count") == hist_before + 1


def test_ai_errors_by_kind() -> None:
    before = value("sophie_chat_ai_errors_total", kind="timeout")
    calls = value("sophie_chat_ai_calls_total", outcome="error")
    metrics.observe_ai_call(ok=False, kind="timeout")
    metrics.observe_ai_call(ok=True)
    assert value("sophie_chat_ai_errors_total", kind="timeout") == before + 1
    assert value("sophie_chat_ai_calls_total", outcome="error") == calls + 1


def test_connections_rate_limits_escalations() -> None:
    base = value("sophie_chat_active_connections")
    metrics.connection_opened()
    metrics.connection_opened()
    metrics.connection_closed()
    assert value("sophie_chat_active_connections") == base + 1
    metrics.connection_closed()
    rl = value("sophie_chat_rate_limited_messages_total")
    metrics.observe_rate_limited()
    assert value("sophie_chat_rate_limited_messages_total") == rl + 1
    esc = value("sophie_chat_escalations_total", reason="frustration")
    metrics.observe_escalation("frustration")
    assert value("sophie_chat_escalations_total", reason="frustration") == esc + 1


def test_everything_is_a_no_op_without_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(metrics, "_metrics", None)
    monkeypatch.setattr(metrics, "_unavailable", False)
    # A None entry in sys.modules makes the import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    assert metrics.available() is False
    metrics.observe_turn(source="ai", first_token_ms=1, response_ms=2)
    metrics.observe_ai_call(ok=False, kind="timeout")
    metrics.observe_rate_limited()
    metrics.observe_escalation("frustration")
    metrics.connection_opened()
    metrics.connection_closed()
    metrics.set_active_sessions(3)
