"""Channels' authentication for the chat socket, with its database work on the chat's threads.

Channels' ``AuthMiddleware`` loads the Django session and the user through
``database_sync_to_async``, which runs every such call of a worker process on one shared thread:
when many visitors connect at once (a deploy, a reconnect storm), every handshake queues there.
:class:`PooledAuthMiddleware` does the same work on the ``DB_THREADS`` pool that the chat's own
database units use. It is a drop-in replacement::

    from sophie_chat.auth import AuthMiddlewareStack

    application = ProtocolTypeRouter({
        "websocket": ChatOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    })

:func:`sophie_chat.routing.get_asgi_application` already uses it.
"""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddleware, get_user
from channels.sessions import CookieMiddleware, SessionMiddleware

from sophie_chat.dbunits import db_unit

# The plain function behind Channels' database_sync_to_async(get_user): same rules, other thread.
_get_user = db_unit(get_user.func)


class PooledAuthMiddleware(AuthMiddleware):
    """``channels.auth.AuthMiddleware`` with the session and user loaded on ``DB_THREADS``."""

    async def resolve_scope(self, scope: dict[str, Any]) -> None:
        scope["user"]._wrapped = await _get_user(scope)


def AuthMiddlewareStack(inner: Any) -> Any:
    """Cookies, Django session, then :class:`PooledAuthMiddleware`, as Channels' stack does."""
    return CookieMiddleware(SessionMiddleware(PooledAuthMiddleware(inner)))
