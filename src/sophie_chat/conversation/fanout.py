"""Fan-out of a session's frames to all its sockets, on any worker, at the least cost.

A mixin of :class:`~sophie_chat.consumers.ChatConsumer`. Answers go to the socket that asked with
``send()``; a channel-layer ``group_send`` per frame is made only while another socket of the same
session is known (``chat.hello`` / ``chat.here`` / ``chat.bye`` keep each socket's set of peers),
or after the asking socket has gone (a reconnecting tab may be on any worker). A single tab
therefore costs no channel-layer traffic per token. See docs/protocol.rst, "Tabs, workers and
fan-out", for the measured difference.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sophie_chat import protocol
from sophie_chat.logging import get_logger

logger = get_logger(__name__)


class SessionFanout:
    """Channel-layer group membership and relaying for one chat socket."""

    channel_layer: Any
    channel_name: str
    connected: bool
    group: str
    peers: set[str]
    ended: str | None

    if TYPE_CHECKING:  # provided by the consumer; not defined here, so the MRO finds theirs

        async def send(
            self, text_data: str | None = None, bytes_data: bytes | None = None
        ) -> None: ...

        async def send_frame(self, frame: dict[str, Any]) -> None: ...

    async def _layer(self, method: str, *args: Any) -> None:
        if self.channel_layer is None:
            return
        try:
            await getattr(self.channel_layer, method)(*args)
        except Exception as exc:  # a Redis blip degrades multi-tab fan-out, nothing else
            logger.warning("channel_layer_failed", op=method, error=type(exc).__name__)

    async def _join(self, session_id: uuid.UUID) -> None:
        if self.group:
            await self._layer(
                "group_send", self.group, {"type": "chat.bye", "sender": self.channel_name}
            )
            await self._layer("group_discard", self.group, self.channel_name)
        self.group, self.peers = f"sophie-chat.{session_id.hex}", set()
        await self._layer("group_add", self.group, self.channel_name)
        await self._layer(
            "group_send", self.group, {"type": "chat.hello", "sender": self.channel_name}
        )

    async def _deliver(self, frame: dict[str, Any], group: str) -> None:
        """Send a frame of this socket's answers: here, and to the session's other sockets."""
        if self.connected:
            try:
                await self.send(text_data=protocol.dumps(frame))
            except Exception:
                self.connected = False
        if group and (self.peers or not self.connected or group != self.group):
            await self._layer(
                "group_send",
                group,
                {"type": "chat.frame", "frame": frame, "sender": self.channel_name},
            )

    async def chat_frame(self, event: dict[str, Any]) -> None:
        if event.get("sender") != self.channel_name:
            await self.send_frame(event["frame"])

    async def chat_hello(self, event: dict[str, Any]) -> None:
        if event["sender"] != self.channel_name:
            self.peers.add(event["sender"])
            await self._layer(
                "send",
                event["sender"],
                {"type": "chat.here", "sender": self.channel_name, "group": self.group},
            )

    async def chat_here(self, event: dict[str, Any]) -> None:
        if event.get("group") == self.group:
            self.peers.add(event["sender"])

    async def chat_bye(self, event: dict[str, Any]) -> None:
        self.peers.discard(event["sender"])

    async def chat_closed(self, event: dict[str, Any]) -> None:
        if event.get("sender") != self.channel_name and event.get("group") == self.group:
            self.ended = "closed"
            await self.send_frame(protocol.closed_frame(event["session_id"]))

    async def _leave(self) -> None:
        if self.group:
            # Any answer still streaming goes on in its own task and now relays via the group.
            await self._layer(
                "group_send", self.group, {"type": "chat.bye", "sender": self.channel_name}
            )
            await self._layer("group_discard", self.group, self.channel_name)
