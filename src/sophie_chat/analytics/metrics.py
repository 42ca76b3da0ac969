"""Prometheus metrics, optional: ``pip install django-sophie-chat[prometheus]``.

Every function here is cheap and safe to call from any thread or event loop; without
``prometheus-client`` installed they do nothing. Metrics live in ``prometheus_client``'s default
registry, so an existing ``/metrics`` endpoint of the site exports them too; the app's own
``chat/metrics/`` view serves the same registry. With several worker processes, set
``PROMETHEUS_MULTIPROC_DIR`` as the client's documentation describes.

Who calls what: :func:`sophie_chat.analytics.recorder.record_turn` already calls
:func:`observe_turn`, :func:`observe_ai_call` and :func:`observe_escalation`; the consumer calls
:func:`connection_opened` / :func:`connection_closed`, and the rate limiter
:func:`observe_rate_limited`.
"""

from __future__ import annotations

import threading
from typing import Any

# Seconds; chat replies stream for seconds, first tokens arrive in well under one.
FIRST_TOKEN_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
RESPONSE_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0)

_lock = threading.Lock()
_metrics: dict[str, Any] | None = None
_unavailable = False


def available() -> bool:
    """True when ``prometheus-client`` is installed."""
    return _get() is not None


def _get() -> dict[str, Any] | None:
    global _metrics, _unavailable
    if _metrics is not None or _unavailable:
        return _metrics
    with _lock:
        if _metrics is not None or _unavailable:
            return _metrics
        try:
            import prometheus_client as pc
        except ImportError:
            _unavailable = True
            return None
        _metrics = {
            "turns": pc.Counter(
                "sophie_chat_turns", "Chat turns answered, by answer source.", ["source"]
            ),
            "first_token": pc.Histogram(
                "sophie_chat_first_token_seconds",
                "Time from the user message to the first streamed piece of the answer.",
                buckets=FIRST_TOKEN_BUCKETS,
            ),
            "response": pc.Histogram(
                "sophie_chat_response_seconds",
                "Time from the user message to the end of the answer.",
                buckets=RESPONSE_BUCKETS,
            ),
            "ai_calls": pc.Counter(
                "sophie_chat_ai_calls", "Calls to the AI model, by outcome.", ["outcome"]
            ),
            "ai_errors": pc.Counter(
                "sophie_chat_ai_errors", "Failed calls to the AI model, by kind.", ["kind"]
            ),
            "rate_limited": pc.Counter(
                "sophie_chat_rate_limited_messages", "User messages refused by the rate limiter."
            ),
            "escalations": pc.Counter(
                "sophie_chat_escalations", "Turns that escalated to a human, by reason.", ["reason"]
            ),
            "connections": pc.Gauge(
                "sophie_chat_active_connections",
                "Open chat WebSocket connections in this process.",
                multiprocess_mode="livesum",
            ),
            "sessions": pc.Gauge(
                "sophie_chat_active_sessions",
                "Chat sessions active in the last SESSION_TTL seconds (read from the database).",
                multiprocess_mode="max",
            ),
        }
        return _metrics


def _seconds(ms: Any) -> float | None:
    try:
        return None if ms is None else max(0.0, float(ms) / 1000.0)
    except (TypeError, ValueError):
        return None


def observe_turn(*, source: str, first_token_ms: Any = None, response_ms: Any = None) -> None:
    """Count a finished turn and its timings (milliseconds; None when unknown)."""
    m = _get()
    if m is None:
        return
    m["turns"].labels(source=source or "unknown").inc()
    ttft = _seconds(first_token_ms)
    if ttft is not None:
        m["first_token"].observe(ttft)
    total = _seconds(response_ms)
    if total is not None:
        m["response"].observe(total)


def observe_ai_call(*, ok: bool, kind: str = "") -> None:
    """Count one call to the AI model; ``kind`` names the failure (timeout, rate_limited...)."""
    m = _get()
    if m is None:
        return
    m["ai_calls"].labels(outcome="ok" if ok else "error").inc()
    if not ok:
        m["ai_errors"].labels(kind=(kind or "unknown")[:40]).inc()


def observe_rate_limited() -> None:
    """Count a user message refused by the rate limiter."""
    m = _get()
    if m is not None:
        m["rate_limited"].inc()


def observe_escalation(reason: str) -> None:
    """Count a turn that escalated to a human."""
    m = _get()
    if m is not None:
        m["escalations"].labels(reason=reason or "unknown").inc()


def connection_opened() -> None:
    """A chat WebSocket was accepted."""
    m = _get()
    if m is not None:
        m["connections"].inc()


def connection_closed() -> None:
    """A chat WebSocket that was accepted has closed."""
    m = _get()
    if m is not None:
        m["connections"].dec()


def set_active_sessions(count: int) -> None:
    """Set the active sessions gauge (the metrics view does it at every scrape)."""
    m = _get()
    if m is not None:
        m["sessions"].set(count)


def exposition(accept: str = "") -> tuple[bytes, str]:
    """The body and content type of a scrape of the default registry."""
    import os

    import prometheus_client as pc
    from prometheus_client import exposition as pe

    registry: Any = pc.REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = pc.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    encoder, content_type = pe.choose_encoder(accept)
    return encoder(registry), content_type
