"""Origin check of the chat WebSocket handshake.

Browsers send ``Origin`` on every WebSocket handshake and do not apply the same-origin policy to
WebSockets, so a page on another site could otherwise open a chat with the visitor's cookies
(cross-site WebSocket hijacking). The check runs before the consumer and refuses with HTTP 403.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from sophie_chat.conf import get_config
from sophie_chat.logging import get_logger

logger = get_logger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origin(value: str) -> tuple[str, str, int] | None:
    """Return ``(scheme, host, port)`` of an ``Origin`` value, or None when it is not one.

    An origin is ``scheme://host[:port]`` and nothing else: a path, query, fragment or
    credentials mean it is not an origin a browser would send.
    """
    if not value or value == "null" or value != value.strip():
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        return None
    if "@" in parts.netloc:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal: keep the brackets as the Host header writes it
        host = f"[{host}]"
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def _header(scope: dict[str, Any], name: bytes) -> list[str]:
    return [v.decode("latin1") for k, v in scope.get("headers", []) if k.lower() == name]


def _allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        # The same fallback Django applies to HTTP requests while DEBUG is on.
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Whether the handshake's ``Origin`` may open a chat. Configuration is read now."""
    origins = _header(scope, b"origin")
    if len(origins) != 1:
        return False
    origin = parse_origin(origins[0])
    if origin is None:
        return False
    allowed = get_config()["ALLOWED_ORIGINS"]
    if allowed:
        return origin in {parse_origin(str(item).rstrip("/")) for item in allowed}
    # Without a list: same origin as the page that served the widget, on an allowed host.
    hosts = _header(scope, b"host")
    if len(hosts) != 1:
        return False
    domain, port = split_domain_port(hosts[0].lower())
    if not domain:
        return False
    scheme, origin_host, origin_port = origin
    # A Host without a port means the default port of the scheme the browser used (a TLS proxy
    # in front of the server turns wss into ws, so the scope's scheme cannot be trusted here).
    host_port = int(port) if port else _DEFAULT_PORTS[scheme]
    if (origin_host.strip("[]"), origin_port) != (domain.strip("[]"), host_port):
        return False
    return validate_host(domain, _allowed_hosts())


class ChatOriginValidator:
    """ASGI middleware that refuses WebSocket handshakes from other origins with HTTP 403."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            logger.warning("ws_origin_refused", path=scope.get("path", ""))
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)


__all__ = ["ChatOriginValidator", "origin_allowed", "parse_origin"]
