"""Settings of django-sophie-chat: one dict, ``CHAT_CONFIG``, merged over defaults.

Read the effective configuration with :func:`get_config` at call time (never at import time), so
``override_settings(CHAT_CONFIG=...)`` works in tests.
"""

from __future__ import annotations

import os
from typing import Any

from appconf import AppConf
from django.conf import settings
from django.core.signals import setting_changed


class SophieChatAppConf(AppConf):
    """Documented defaults of every ``CHAT_CONFIG`` key (see docs/configuration.rst)."""

    DEFAULTS: dict[str, Any] = {
        # --- Assistant -----------------------------------------------------------------------
        "ASSISTANT_NAME": "Sophie",  # str: shown in the widget header and used in prompts
        "DEFAULT_LANGUAGE": "pt-br",  # language code: answers when the user's language is unknown
        # --- AI backend --------------------------------------------------------------------------
        # dotted path, or None: OpenAIBackend when OPENAI_API_KEY is set, else the offline one
        "AI_BACKEND": None,
        "OPENAI_API_KEY": None,  # str or None: None reads the OPENAI_API_KEY environment variable
        "OPENAI_BASE_URL": None,  # str or None: None reads OPENAI_BASE_URL, else api.openai.com
        "OPENAI_MODEL": "gpt-4o-mini",  # str: chat completions model name
        "OPENAI_TIMEOUT": 20.0,  # seconds: whole reply, including time to first token
        "OPENAI_FIRST_TOKEN_TIMEOUT": 10.0,  # seconds: until the first delta arrives
        "OPENAI_MAX_RETRIES": 1,  # count: retries before the first delta only
        # "auto" (aiohttp when installed, else httpx), "aiohttp" or "httpx": the SDK's transport
        "OPENAI_HTTP_CLIENT": "auto",
        "MAX_TOKENS": 600,  # tokens: cap on each completion (max_tokens)
        "TEMPERATURE": 0.3,  # 0.0-2.0: sampling temperature
        "MAX_PROMPT_CHARS": 24000,  # characters: cap on the whole prompt sent to the model
        "HISTORY_MESSAGES_FOR_MODEL": 10,  # messages: past turns sent to the model
        "DAILY_TOKEN_BUDGET": 0,  # tokens per user per day; 0 = unlimited
        "PROMPT_TEMPLATE": "sophie_chat/prompts/system.txt",  # template name of the system prompt
        # --- Cache ---------------------------------------------------------------------------
        "CACHE_TTL": 3600,  # seconds: lifetime of a cached answer; 0 disables the cache
        # --- Sessions and history ----------------------------------------------------------------
        "SESSION_TTL": 24 * 60 * 60,  # seconds: idle time after which a session expires
        "HISTORY_PAGE_SIZE": 20,  # messages: page sent on connect and per history request
        "MAX_HISTORY_PAGE_SIZE": 100,  # messages: largest page a client may ask for
        "ALLOW_ANONYMOUS": True,  # bool: visitors who are not logged in may chat
        # dotted path of a function (user) -> "client" | "provider" | "staff" | "anonymous"
        "USER_TYPE_RESOLVER": "sophie_chat.conversation.context.default_user_type",
        "USER_CONTEXT_PROVIDER": None,  # dotted path (user)->dict of safe profile facts, or None
        "SERVICE_INFO_PROVIDER": None,  # dotted path of a ServiceInfoProvider, or None
        # "auto" or "python" (BM25 in Python, in memory), "postgres" (PostgreSQL full-text search)
        "KNOWLEDGE_SEARCH_ENGINE": "auto",
        # --- Limits --------------------------------------------------------------------------
        "RATE_LIMIT": "10/m",  # "N/s", "N/m", "N/h" or "N/d": user messages per sliding window
        "RATE_LIMIT_FAIL_OPEN": True,  # bool: when Redis is down, fall back to a local limiter
        "MAX_MESSAGE_LENGTH": 2000,  # characters: longest user message
        "MAX_FRAME_BYTES": 16384,  # bytes: largest WebSocket frame accepted
        "REDIS_URL": None,  # str or None: None reads REDIS_URL; None there means no Redis
        "ALLOWED_ORIGINS": None,  # list of origins, or None to derive them from ALLOWED_HOSTS
        "STREAM_COALESCE_MS": 50,  # milliseconds: deltas are merged into one frame per window
        "DB_THREADS": 4,  # threads: per worker process, run the chat's database units
        # "auto" (on PostgreSQL with psycopg 3) or "off": a turn's writes on the event loop
        "ASYNC_DATABASE": "auto",
        "GC_FREEZE": True,  # bool: freeze long-lived objects for the garbage collector (worker)
        # --- Escalation and support -----------------------------------------------------------
        "SUPPORT_CONTACT": {  # dict: shown when the assistant escalates to a human
            "email": "",
            "phone": "",
            "whatsapp": "",
            "hours": "",
            "url": "",
        },
        "FRUSTRATION_WORDS": [],  # list of str: extra words or phrases that signal frustration
        "ESCALATION_FALLBACK_THRESHOLD": 2,  # count: fallback answers in a row before escalating
        "NOTIFY_STAFF_ON_ESCALATION": False,  # bool: e-mail MANAGERS a short transcript
        # --- Analytics and monitoring -------------------------------------------------------------
        "METRICS_TOKEN": None,  # str or None: bearer token for the metrics endpoint
        "ALERT_AI_FAILURE_RATE": 0.5,  # 0.0-1.0: AI failure share that raises an alert
        "ALERT_WINDOW": 300,  # seconds: window over which the failure rate is measured
        "ALERT_MIN_CALLS": 10,  # count: calls in the window before an alert may fire
        "ALERT_COOLDOWN": 1800,  # seconds: minimum time between two alerts
        "RETENTION_DAYS": 365,  # days: closed sessions older than this are deleted; 0 keeps all
        # --- Widget --------------------------------------------------------------------------
        "WIDGET": {
            "position": "bottom-right",  # "bottom-right" or "bottom-left"
            "z_index": 999,  # CSS z-index of the launcher and window
            "offset_bottom": 88,  # pixels: room below the launcher (the accessibility button)
            "offset_side": 24,  # pixels: distance from the side of the viewport
            "primary_color": "#5b2bd6",  # CSS colour of the launcher, header and user bubbles
            "text_color": "#ffffff",  # CSS colour of text on the primary colour
        },
    }

    class Meta:
        prefix = "SOPHIE_CHAT"


def _env_or(value: Any, name: str) -> Any:
    return value if value is not None else (os.environ.get(name) or None)


def get_config() -> dict[str, Any]:
    """Return the effective configuration: ``CHAT_CONFIG`` merged over the defaults.

    Nested dicts (``WIDGET``, ``SUPPORT_CONTACT``) are merged one level deep, so a site may set
    only the colours it cares about. The merge is remembered while ``settings.CHAT_CONFIG`` is the
    same object and the three environment variables are unchanged (a turn reads the configuration
    dozens of times); each call returns its own copy, which the caller may change.
    """
    global _merged
    user: dict[str, Any] = getattr(settings, "CHAT_CONFIG", None) or _NO_SETTINGS
    env = tuple(os.environ.get(name) for name in _ENV_NAMES)
    memo = _merged
    if memo is None or memo[0] is not user or memo[1] != env:
        memo = _merged = (user, env, _merge(user))
    # The nested dicts (WIDGET, SUPPORT_CONTACT) are copied too: nothing a caller changes leaks.
    config = dict(memo[2])
    for key in _NESTED:
        if isinstance(config[key], dict):
            config[key] = dict(config[key])
    return config


_NO_SETTINGS: dict[str, Any] = {}  # one object, so an unset CHAT_CONFIG is remembered too


_ENV_NAMES = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "REDIS_URL")
_NESTED = [key for key, value in SophieChatAppConf.DEFAULTS.items() if isinstance(value, dict)]
# (the CHAT_CONFIG object, the environment variables, the merge). Holding the object keeps its id
# from being reused by another dict.
_merged: tuple[Any, tuple[str | None, ...], dict[str, Any]] | None = None


def _merge(user: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, default in SophieChatAppConf.DEFAULTS.items():
        value = user.get(key, default)
        if isinstance(default, dict) and isinstance(value, dict):
            value = {**default, **value}
        config[key] = value
    config["OPENAI_API_KEY"] = _env_or(config["OPENAI_API_KEY"], "OPENAI_API_KEY")
    config["OPENAI_BASE_URL"] = _env_or(config["OPENAI_BASE_URL"], "OPENAI_BASE_URL")
    config["REDIS_URL"] = _env_or(config["REDIS_URL"], "REDIS_URL")
    return config


def _forget(**kwargs: Any) -> None:
    global _merged
    _merged = None


# A test's override_settings may replace CHAT_CONFIG by an equal-looking object: start afresh.
setting_changed.connect(_forget, dispatch_uid="sophie_chat_conf_forget")


def default_keys() -> list[str]:
    """Every key that ``CHAT_CONFIG`` accepts."""
    return list(SophieChatAppConf.DEFAULTS)
