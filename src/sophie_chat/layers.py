"""A correct ``CHANNEL_LAYERS`` entry for channels-redis with redis-py 8.

Under its defaults channels-redis 4.3 with redis-py 8 loses consumers (redis-py's 5 s socket read
timeout equals the layer's 5 s blocking pop), refuses bursts of connections (a pool of 100), and
silently drops group messages past a per-process ``capacity`` of 100 (django/channels_redis#422).
"""

from __future__ import annotations

from typing import Any

#: Markers the system check ``sophie_chat.W010`` looks for on a Redis layer's host entries.
SOCKET_TIMEOUT = 10  # seconds: longer than the layer's 5 s blocking pop
MAX_CONNECTIONS = 5000  # connections per pool
CAPACITY = 5000  # messages per channel before the layer drops


def redis_channel_layer(
    url: str,
    *,
    prefix: str = "sophie",
    capacity: int = CAPACITY,
    socket_timeout: float = SOCKET_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
    expiry: int = 60,
    group_expiry: int = 86400,
) -> dict[str, Any]:
    """Return a ``CHANNEL_LAYERS["default"]`` dict for channels-redis that survives production."""
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": url,
                    "socket_timeout": socket_timeout,
                    "socket_connect_timeout": 5,
                    "max_connections": max_connections,
                    "health_check_interval": 30,
                }
            ],
            "prefix": prefix,
            "capacity": capacity,
            "expiry": expiry,
            "group_expiry": group_expiry,
        },
    }
