"""Placeholder; the conversation core replaces it."""

from __future__ import annotations

from channels.security.websocket import AllowedHostsOriginValidator as ChatOriginValidator

__all__ = ["ChatOriginValidator"]
