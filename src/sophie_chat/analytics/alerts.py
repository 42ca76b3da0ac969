"""An in-process alarm for a failing AI provider.

:func:`record_ai_call` keeps the outcomes of recent AI calls in a sliding window of
``ALERT_WINDOW`` seconds. When at least ``ALERT_MIN_CALLS`` calls are in the window and the share
of failures reaches ``ALERT_AI_FAILURE_RATE``, it logs ``ai_failure_alert`` at ERROR and e-mails
ADMINS (``mail_admins``, in a background thread), then stays quiet for ``ALERT_COOLDOWN`` seconds.

The window is per process: each worker watches its own calls. For a fleet-wide view use the
Prometheus alert rules of docs/analytics.rst.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable

from django.core.mail import mail_admins

from sophie_chat.conf import get_config
from sophie_chat.logging import get_logger

logger = get_logger(__name__)


class FailureWindow:
    """Outcomes of recent calls, oldest first, and the time of the last alert.

    The failures in the window are counted as calls come and go, so recording a call costs the
    same with ten calls in the window as with thirty thousand (``ALERT_WINDOW`` seconds of a busy
    worker's calls).
    """

    def __init__(self) -> None:
        self.calls: deque[tuple[float, bool, str]] = deque()  # (time, ok, kind or "unknown")
        self.failures: Counter[str] = Counter()  # failed calls in the window, by kind
        self.last_alert: float | None = None
        self.lock = threading.Lock()

    @property
    def failed(self) -> int:
        """Failed calls in the window (a handful of kinds to add up)."""
        return sum(self.failures.values())

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.failures.clear()
            self.last_alert = None

    def add(self, now: float, ok: bool, kind: str) -> None:
        """Record a call made at ``now``; the caller holds :attr:`lock`."""
        kind = kind or "unknown"
        self.calls.append((now, ok, kind))
        if not ok:
            self.failures[kind] += 1

    def forget_before(self, cutoff: float) -> None:
        """Drop the calls made before ``cutoff``; the caller holds :attr:`lock`."""
        calls, failures = self.calls, self.failures
        while calls and calls[0][0] < cutoff:
            _, ok, kind = calls.popleft()
            if not ok:
                failures[kind] -= 1
                if not failures[kind]:
                    del failures[kind]


_window = FailureWindow()


def _mail_in_thread(subject: str, body: str) -> None:
    def send() -> None:
        try:
            mail_admins(subject, body)
        except Exception:
            logger.exception("ai_failure_alert_email_failed")

    threading.Thread(target=send, name="sophie-chat-alert", daemon=True).start()


# Tests replace this with a direct call.
send_mail: Callable[[str, str], None] = _mail_in_thread

clock: Callable[[], float] = time.monotonic


def record_ai_call(*, ok: bool, kind: str = "", window: FailureWindow | None = None) -> bool:
    """Record one AI call's outcome; return True when this call raised an alert."""
    config = get_config()
    span = float(config["ALERT_WINDOW"])
    threshold = float(config["ALERT_AI_FAILURE_RATE"])
    min_calls = int(config["ALERT_MIN_CALLS"])
    cooldown = float(config["ALERT_COOLDOWN"])
    w = window or _window
    now = clock()
    with w.lock:
        w.add(now, ok, kind)
        w.forget_before(now - span)
        total, failed = len(w.calls), w.failed
        if threshold <= 0 or total < max(1, min_calls) or failed / total < threshold:
            return False
        if w.last_alert is not None and now - w.last_alert < cooldown:
            return False
        w.last_alert = now
        kinds = w.failures.most_common(5)
    rate = failed / total
    logger.error(
        "ai_failure_alert",
        failure_rate=round(rate, 3),
        calls=total,
        failures=failed,
        window_s=span,
        kinds=dict(kinds),
    )
    body = (
        f"{failed} of the last {total} AI calls failed within {span:.0f} s "
        f"({rate:.0%}, alert threshold {threshold:.0%}).\n"
        f"Failure kinds: {', '.join(f'{k} x{n}' for k, n in kinds)}.\n"
        "Users are getting fallback answers. Check the AI provider's status, the API key and "
        f"the network. The next alert comes after at least {cooldown:.0f} s."
    )
    send_mail("Sophie chat: AI calls are failing", body)
    return True
