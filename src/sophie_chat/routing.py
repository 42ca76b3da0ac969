"""WebSocket routes of the chat and a helper that builds a site's whole ASGI application.

Importing this module does not import the models, so a site's ``asgi.py`` may import it before
Django is set up; ``websocket_urlpatterns`` is built on first access.
"""

from __future__ import annotations

from typing import Any

from django.urls import path

WS_PATH = "ws/sophie-chat/"


def _websocket_urlpatterns() -> list[Any]:
    from sophie_chat.consumers import ChatConsumer

    return [path(WS_PATH, ChatConsumer.as_asgi(), name="sophie_chat_ws")]


def __getattr__(name: str) -> Any:
    # PEP 562: ``from sophie_chat.routing import websocket_urlpatterns`` works after setup.
    if name == "websocket_urlpatterns":
        patterns = _websocket_urlpatterns()
        globals()["websocket_urlpatterns"] = patterns
        return patterns
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_asgi_application(extra_websocket_urlpatterns: list[Any] | None = None) -> Any:
    """Return Django's HTTP application plus the origin-checked, authenticated chat WebSocket.

    A site's ``asgi.py`` becomes ``application = sophie_chat.routing.get_asgi_application()``.
    The WebSocket stack: :class:`~sophie_chat.security.ChatOriginValidator` (refuses other
    origins at the handshake), then :func:`sophie_chat.auth.AuthMiddlewareStack` (cookies, Django
    session, user: Channels' own stack, with the session and user loaded on the chat's database
    threads), then the chat's routes plus any ``extra_websocket_urlpatterns`` of the site. With
    ``GC_FREEZE`` (the default) the objects built so far are frozen for the garbage collector
    (:mod:`sophie_chat.gcfreeze`).
    """
    from django.core.asgi import get_asgi_application as django_asgi_app

    http_app = django_asgi_app()  # sets Django up before the routing imports below

    from channels.routing import ProtocolTypeRouter, URLRouter

    from sophie_chat import gcfreeze
    from sophie_chat.auth import AuthMiddlewareStack
    from sophie_chat.security import ChatOriginValidator

    routes = [*_websocket_urlpatterns(), *(extra_websocket_urlpatterns or [])]
    application = ProtocolTypeRouter(
        {
            "http": http_app,
            "websocket": ChatOriginValidator(AuthMiddlewareStack(URLRouter(routes))),
        }
    )
    gcfreeze.at_startup()  # GC_FREEZE: the collector's full passes skip what is built so far
    return application
