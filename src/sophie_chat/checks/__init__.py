"""System checks of django-sophie-chat (ids ``sophie_chat.E0xx`` and ``sophie_chat.W0xx``).

Importing this package registers them; ``SophieChatConfig.ready()`` does. Every id is documented
in ``docs/checks.rst`` with its meaning and fix.
"""

from __future__ import annotations

from sophie_chat.checks.config import check_chat_config
from sophie_chat.checks.deployment import (
    check_allowed_hosts,
    check_allowed_origins,
    check_api_key_literal,
    check_asgi,
    check_channel_layers,
    check_in_memory_layer,
    check_redis_url,
)

__all__ = [
    "check_allowed_hosts",
    "check_allowed_origins",
    "check_api_key_literal",
    "check_asgi",
    "check_channel_layers",
    "check_chat_config",
    "check_in_memory_layer",
    "check_redis_url",
]
