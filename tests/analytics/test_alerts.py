from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.test import override_settings

from sophie_chat.analytics import alerts
from tests.conftest import recipient

CONFIG = {
    "ALERT_AI_FAILURE_RATE": 0.5,
    "ALERT_WINDOW": 60,
    "ALERT_MIN_CALLS": 4,
    "ALERT_COOLDOWN": 600,
}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(alerts, "clock", lambda: now[0])
    return now


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch, settings: Any, mailoutbox: list[Any]) -> list[Any]:
    settings.ADMINS = [recipient("Ops", "ops@example.com")]
    # The real sender uses a thread; send inline so the outbox can be checked.
    monkeypatch.setattr(alerts, "send_mail", lambda s, b: alerts.mail_admins(s, b))
    return mailoutbox


@override_settings(CHAT_CONFIG=CONFIG)
def test_alert_fires_once_then_cools_down(clock: list[float], sent: list[Any]) -> None:
    window = alerts.FailureWindow()
    assert not alerts.record_ai_call(ok=True, window=window)
    assert not alerts.record_ai_call(ok=False, kind="timeout", window=window)
    # 1 of 2 failed: the rate is reached but there are too few calls yet.
    assert not alerts.record_ai_call(ok=True, window=window)
    assert alerts.record_ai_call(ok=False, kind="timeout", window=window)
    assert len(sent) == 1
    assert sent[0].to == ["ops@example.com"]
    assert "2 of the last 4" in sent[0].body
    assert "timeout x2" in sent[0].body
    # Still failing, but within the cooldown: no second e-mail.
    clock[0] += 30
    assert not alerts.record_ai_call(ok=False, kind="timeout", window=window)
    assert len(sent) == 1
    clock[0] += 600
    for _ in range(4):
        fired = alerts.record_ai_call(ok=False, kind="server_error", window=window)
    assert fired
    assert len(sent) == 2


@override_settings(CHAT_CONFIG=CONFIG)
def test_old_calls_leave_the_window(clock: list[float], sent: list[Any]) -> None:
    window = alerts.FailureWindow()
    for _ in range(3):
        alerts.record_ai_call(ok=False, window=window)
    clock[0] += 61
    # The three failures are out of the window; these successes never alert.
    for _ in range(4):
        assert not alerts.record_ai_call(ok=True, window=window)
    assert not alerts.record_ai_call(ok=False, window=window)
    assert sent == []


@override_settings(CHAT_CONFIG={**CONFIG, "ALERT_AI_FAILURE_RATE": 0.9})
def test_below_the_rate_no_alert(clock: list[float], sent: list[Any]) -> None:
    window = alerts.FailureWindow()
    for ok in (False, False, False, True, False, False, False, True):
        assert not alerts.record_ai_call(ok=ok, window=window)
    assert sent == []


@override_settings(CHAT_CONFIG=CONFIG)
def test_alert_is_logged_at_error(clock: list[float], sent: list[Any]) -> None:
    import structlog

    window = alerts.FailureWindow()
    with structlog.testing.capture_logs() as logs:
        for _ in range(4):
            alerts.record_ai_call(ok=False, kind="timeout", window=window)
    assert [entry["log_level"] for entry in logs] == ["error"]
    assert logs[0]["event"] == "ai_failure_alert"
    assert logs[0]["failure_rate"] == 1.0


@override_settings(CHAT_CONFIG={**CONFIG, "ALERT_AI_FAILURE_RATE": 0.99})
def test_running_counts_match_the_calls_in_the_window(clock: list[float], sent: list[Any]) -> None:
    """The failures are counted as calls enter and leave the window (not recounted per call):
    after any mix of outcomes, kinds and expiries the counts are those of the calls left."""
    import random

    rng = random.Random(8)
    window = alerts.FailureWindow()
    for _ in range(2000):
        clock[0] += rng.choice([0.0, 0.5, 3.0, 70.0])
        ok = rng.random() < 0.7
        alerts.record_ai_call(ok=ok, kind=rng.choice(["", "timeout", "rate_limit"]), window=window)
        left = [(k or "unknown") for _, good, k in window.calls if not good]
        assert window.failed == len(left)
        assert window.failures == Counter(left)
        assert all(t >= clock[0] - CONFIG["ALERT_WINDOW"] for t, _, _ in window.calls)


@override_settings(CHAT_CONFIG=CONFIG)
def test_the_alert_names_only_the_kinds_still_in_the_window(
    clock: list[float], sent: list[Any]
) -> None:
    window = alerts.FailureWindow()
    for _ in range(3):
        alerts.record_ai_call(ok=False, kind="auth", window=window)
    clock[0] += 61  # the auth failures leave the window
    alerts.record_ai_call(ok=True, window=window)
    for _ in range(2):
        alerts.record_ai_call(ok=False, kind="timeout", window=window)
    assert alerts.record_ai_call(ok=False, window=window)
    assert "3 of the last 4" in sent[0].body
    assert "timeout x2, unknown x1" in sent[0].body
    assert "auth" not in sent[0].body
