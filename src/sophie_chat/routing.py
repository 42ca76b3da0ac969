"""WebSocket routes of the chat and a helper that builds a site's whole ASGI application."""

from __future__ import annotations

from typing import Any

from django.urls import path

from sophie_chat.consumers import ChatConsumer

websocket_urlpatterns = [
    path("ws/sophie-chat/", ChatConsumer.as_asgi(), name="sophie_chat_ws"),
]


def get_asgi_application(extra_websocket_urlpatterns: list[Any] | None = None) -> Any:
    """Return Django's HTTP application plus the origin-checked, authenticated chat WebSocket.

    A site's ``asgi.py`` becomes ``application = sophie_chat.routing.get_asgi_application()``.
    """
    from django.core.asgi import get_asgi_application as django_asgi_app

    http_app = django_asgi_app()  # sets Django up before the routing imports below

    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter

    from sophie_chat.security import ChatOriginValidator

    routes = [*websocket_urlpatterns, *(extra_websocket_urlpatterns or [])]
    return ProtocolTypeRouter(
        {
            "http": http_app,
            "websocket": ChatOriginValidator(AuthMiddlewareStack(URLRouter(routes))),
        }
    )
