"""Checks of the settings around the chat: Channels, ASGI, origins, channel layers, secrets."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from sophie_chat.conf import get_config

_REDIS_LAYER = "channels_redis.core.RedisChannelLayer"
_IN_MEMORY_LAYER = "channels.layers.InMemoryChannelLayer"
# channels-redis blocks 5 s on BZPOPMIN; a socket read timeout at or under that kills consumers.
_MIN_SOCKET_TIMEOUT = 5
_MIN_MAX_CONNECTIONS = 1000  # redis-py 8 pools refuse connections past 100 by default
_MIN_CAPACITY = 1000  # per process, not per consumer: 100 silently drops group messages
_LAYER_HINT = (
    "Build the entry with sophie_chat.layers.redis_channel_layer(url): "
    'CHANNEL_LAYERS = {"default": redis_channel_layer(os.environ["REDIS_URL"])}.'
)


def _user_config() -> dict[str, Any]:
    user = getattr(settings, "CHAT_CONFIG", None)
    return user if isinstance(user, dict) else {}


@register(Tags.compatibility)
def check_asgi(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """The chat needs Channels installed, an ASGI application and a default channel layer."""
    errors: list[CheckMessage] = []
    if not apps.is_installed("channels"):
        errors.append(
            Error(
                "'channels' is not in INSTALLED_APPS.",
                hint="Add 'channels' to INSTALLED_APPS, before 'sophie_chat'.",
                id="sophie_chat.E010",
            )
        )
    if not getattr(settings, "ASGI_APPLICATION", None):
        errors.append(
            Error(
                "ASGI_APPLICATION is not set, so runserver serves no WebSocket and the widget "
                "cannot connect.",
                hint='Set ASGI_APPLICATION = "mysite.asgi.application", where asgi.py says '
                "application = sophie_chat.routing.get_asgi_application().",
                id="sophie_chat.E011",
            )
        )
    if "default" not in (getattr(settings, "CHANNEL_LAYERS", None) or {}):
        errors.append(
            Error(
                "CHANNEL_LAYERS has no 'default' layer; the chat's tabs and workers cannot share "
                "a conversation.",
                hint='Set CHANNEL_LAYERS = {"default": sophie_chat.layers.redis_channel_layer('
                'os.environ["REDIS_URL"])}, or the in-memory layer for a single process.',
                id="sophie_chat.E013",
            )
        )
    return errors


@register(Tags.compatibility)
def check_redis_url(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """The effective ``REDIS_URL`` (setting or environment variable) must parse."""
    if not isinstance(getattr(settings, "CHAT_CONFIG", None) or {}, dict):
        return []  # sophie_chat.E001 says so already
    url = get_config()["REDIS_URL"]
    if not isinstance(url, str) or not url:
        return []
    import redis

    try:
        # Parses and builds a pool without connecting: a down server is not a configuration error.
        redis.ConnectionPool.from_url(url)
    except ValueError as exc:
        where = (
            'CHAT_CONFIG["REDIS_URL"]'
            if _user_config().get("REDIS_URL")
            else "The REDIS_URL environment variable"
        )
        # The message names the problem, never the URL: it may carry a password.
        return [
            Error(
                f"{where} is not a Redis URL: {exc}",
                hint="Use redis://[:password@]host[:port][/db], rediss://... or unix:///path.",
                id="sophie_chat.E009",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_allowed_hosts(
    app_configs: Iterable[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """With ``ALLOWED_ORIGINS`` unset the WebSocket origin check trusts ``ALLOWED_HOSTS``."""
    if "*" in settings.ALLOWED_HOSTS and _user_config().get("ALLOWED_ORIGINS") is None:
        return [
            Error(
                'ALLOWED_HOSTS contains "*" and CHAT_CONFIG["ALLOWED_ORIGINS"] is not set, so the '
                "chat's WebSocket accepts pages of any host name that reaches this server "
                "(the origin check then only compares Origin with Host).",
                hint='Set CHAT_CONFIG["ALLOWED_ORIGINS"] = ["https://www.example.com"] (the '
                "origins that serve your pages), or list your hosts in ALLOWED_HOSTS.",
                id="sophie_chat.E012",
            )
        ]
    return []


@register(Tags.security)
def check_allowed_origins(
    app_configs: Iterable[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """An entry that is not an origin never matches: the chat would refuse every visitor."""
    origins = _user_config().get("ALLOWED_ORIGINS")
    if not isinstance(origins, (list, tuple)):
        return []  # None is fine; another type is sophie_chat.E003
    from sophie_chat.security import parse_origin

    bad = [o for o in origins if not isinstance(o, str) or parse_origin(o.rstrip("/")) is None]
    if not bad:
        return []
    return [
        Error(
            f'CHAT_CONFIG["ALLOWED_ORIGINS"] has entries that are not origins: {bad!r}.',
            hint='Write each as scheme://host[:port], as browsers send it: "https://www.example.com"'
            ', "http://localhost:8000". No path, no wildcard.',
            id="sophie_chat.E014",
        )
    ]


@register(Tags.compatibility, deploy=True)
def check_in_memory_layer(
    app_configs: Iterable[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """The in-memory layer only reaches consumers of its own process."""
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    backend = (layers.get("default") or {}).get("BACKEND")
    if backend == _IN_MEMORY_LAYER and not settings.DEBUG:
        return [
            Warning(
                "The default channel layer is InMemoryChannelLayer while DEBUG is False: with more "
                "than one worker process, a conversation's tabs stop seeing each other's messages.",
                hint=_LAYER_HINT,
                id="sophie_chat.W001",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_api_key_literal(
    app_configs: Iterable[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """An API key written into settings ends up in version control and in every copy of it."""
    key = _user_config().get("OPENAI_API_KEY")
    if isinstance(key, str) and key and key != os.environ.get("OPENAI_API_KEY"):
        return [
            Warning(
                'CHAT_CONFIG["OPENAI_API_KEY"] is set in settings, not read from the environment.',
                hint="Remove the key from CHAT_CONFIG (or set it to None) and set the "
                "OPENAI_API_KEY environment variable instead.",
                id="sophie_chat.W002",
            )
        ]
    return []


def _layer_problems(layer: dict[str, Any]) -> list[str]:
    config = layer.get("CONFIG") or {}
    problems = []
    for host in config.get("hosts") or [("localhost", 6379)]:
        if not isinstance(host, dict):
            problems.append(f"host {host!r} is not a dict with socket_timeout and max_connections")
            continue
        timeout = host.get("socket_timeout")
        if not isinstance(timeout, (int, float)) or timeout <= _MIN_SOCKET_TIMEOUT:
            problems.append(f"socket_timeout is {timeout!r}, not more than {_MIN_SOCKET_TIMEOUT}")
        connections = host.get("max_connections")
        if not isinstance(connections, int) or connections < _MIN_MAX_CONNECTIONS:
            problems.append(f"max_connections is {connections!r}, not {_MIN_MAX_CONNECTIONS}+")
    capacity = config.get("capacity", 100)
    if not isinstance(capacity, int) or capacity < _MIN_CAPACITY:
        problems.append(f"capacity is {capacity!r}, not {_MIN_CAPACITY}+")
    return problems


@register(Tags.compatibility)
def check_channel_layers(
    app_configs: Iterable[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Under its defaults channels-redis loses consumers and messages (channels_redis#422)."""
    errors: list[CheckMessage] = []
    for alias, layer in (getattr(settings, "CHANNEL_LAYERS", None) or {}).items():
        if not isinstance(layer, dict) or layer.get("BACKEND") != _REDIS_LAYER:
            continue
        problems = _layer_problems(layer)
        if problems:
            errors.append(
                Warning(
                    f"CHANNEL_LAYERS[{alias!r}] uses channels-redis with settings that drop "
                    f"consumers or messages under load: {'; '.join(problems)}.",
                    hint=_LAYER_HINT,
                    id="sophie_chat.W010",
                )
            )
    return errors
