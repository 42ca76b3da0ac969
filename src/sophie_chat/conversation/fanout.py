"""Fan-out of a session's frames to all its sockets, on any worker, at the least cost.

A mixin of :class:`~sophie_chat.consumers.ChatConsumer`. Answers go to the socket that asked with
``send()``; a channel-layer ``group_send`` per frame is made only while another socket of the same
session is known (``chat.hello`` / ``chat.here`` / ``chat.bye`` keep each socket's set of peers),
or after the asking socket has gone (a reconnecting tab may be on any worker). A single tab
therefore costs no channel-layer traffic per token. See docs/protocol.rst, "Tabs, workers and
fan-out", for the measured difference.

Every socket also joins its owner's group (:func:`owner_group`) on connect. A session is created
by its first message; the socket that created it announces it there (``chat.session``), and the
owner's other sockets open it, so tabs opened before the first message follow the conversation.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch

from sophie_chat import protocol
from sophie_chat.conversation import service
from sophie_chat.conversation.types import Owner
from sophie_chat.logging import get_logger

logger = get_logger(__name__)


def session_group(session_id: uuid.UUID) -> str:
    """The channel-layer group of a session's sockets."""
    return f"sophie-chat.{session_id.hex}"


def owner_group(owner: Owner) -> str:
    """The channel-layer group of every socket of one owner, whatever their session.

    Named by a hash: a group name ends up in Redis keys, and a visitor key is the Django
    session key, a secret. 128 bits of SHA-256 keep distinct owners apart.
    """
    key = f"user:{owner.user_id}" if owner.user_id is not None else f"visitor:{owner.visitor_key}"
    return f"sophie-chat-owner.{hashlib.sha256(key.encode()).hexdigest()[:32]}"


class SessionFanout:
    """Channel-layer group membership and relaying for one chat socket."""

    channel_layer: Any
    channel_name: str
    connected: bool
    group: str
    owner_group: str
    peers: set[str]
    ended: str | None
    worker: service.ReplyWorker

    if TYPE_CHECKING:  # provided by the consumer; not defined here, so the MRO finds theirs

        async def send(
            self, text_data: str | None = None, bytes_data: bytes | None = None
        ) -> None: ...

        async def send_frame(self, frame: dict[str, Any]) -> None: ...

        async def _follow(self, session_id: uuid.UUID) -> None: ...

    channel_layer_alias: str
    scope: Any
    base_send: Any

    if TYPE_CHECKING:

        async def dispatch(self, message: dict[str, Any]) -> None: ...

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' ``AsyncConsumer.__call__``, except for the channel-layer side.

        There, a failing receive (Redis down) raised out of the consumer: every socket of the
        worker died at once and its tab reconnected into the same error, over and over. Here the
        socket keeps serving its own chat (fan-out to other tabs pauses) while
        :meth:`_channel_receive` waits for the layer to come back.
        """
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            sources.append(self._channel_receive)
        self.base_send = send
        with suppress(StopConsumer):
            await await_many_dispatch(sources, self.dispatch)

    async def _channel_receive(self) -> dict[str, Any]:
        """The next channel-layer message; while the layer fails, retry with a backoff.

        A Redis that comes back may have lost the group memberships (no persistence), so once
        the layer answers again the socket joins its session's group again and says hello.
        """
        delay, failed = 0.1, False
        while True:
            try:
                if failed:
                    if self.owner_group:
                        await self.channel_layer.group_add(self.owner_group, self.channel_name)
                    if self.group:
                        await self.channel_layer.group_add(self.group, self.channel_name)
                        await self.channel_layer.group_send(
                            self.group, {"type": "chat.hello", "sender": self.channel_name}
                        )
                    logger.info("channel_layer_recovered")
                    failed, delay = False, 0.1
                message: dict[str, Any] = await self.channel_layer.receive(self.channel_name)
                return message
            except Exception as exc:
                if not failed:
                    logger.warning("channel_layer_receive_failed", error=type(exc).__name__)
                failed = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _layer(self, method: str, *args: Any) -> None:
        if self.channel_layer is None:
            return
        try:
            await getattr(self.channel_layer, method)(*args)
        except Exception as exc:  # a Redis blip degrades multi-tab fan-out, nothing else
            logger.warning("channel_layer_failed", op=method, error=type(exc).__name__)

    async def _join(self, session_id: uuid.UUID) -> None:
        """Move to the session's group and greet its other sockets.

        No ``chat.bye`` to the group left behind: a socket moves only when its session is over
        (the owner has one active session, and this socket is joining it), and the other
        sockets of that session move too when they hear of the new one (``chat.session``),
        which empties their set of peers.
        """
        if self.group:
            await self._layer("group_discard", self.group, self.channel_name)
        self.group, self.peers = session_group(session_id), set()
        await self._layer("group_add", self.group, self.channel_name)
        await self._layer(
            "group_send", self.group, {"type": "chat.hello", "sender": self.channel_name}
        )

    async def _enter_created(self, session_id: uuid.UUID, left: str) -> None:
        """Join the group of the session this socket's message has just created; announce it.

        Called after the ``ack`` went out and the answer was handed to the worker, so none of
        this delays the first delta. ``self.group`` is already the new group (the answer's
        frames are addressed to it); ``left`` is the group of the session this socket had.

        No ``chat.hello`` here: ``chat.session`` does its work. A socket that can be in the new
        group belongs to the same owner (only the owner's frames reach a session), so it joined
        the owner's group on connect, before the lookup that could find the session; it gets
        ``chat.session`` after this ``group_add``. Sockets that already joined (a connect that
        found the session just after it was committed, or a tab whose own racing first message
        went into it) answer it like a hello, with ``chat.here``; the others open the session,
        join and say hello, which reaches this socket since it is a member by then. Either way
        both ends learn of each other, as a hello would have made them.
        """
        if left and left != self.group:
            await self._layer("group_discard", left, self.channel_name)
        await self._layer("group_add", self.group, self.channel_name)
        await self._layer(
            "group_send",
            self.owner_group,
            {
                "type": "chat.session",
                "sender": self.channel_name,
                "group": self.group,
                "session_id": session_id.hex,
            },
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
                {"type": "chat.frame", "frame": frame, "sender": self.channel_name, "group": group},
            )

    async def chat_frame(self, event: dict[str, Any]) -> None:
        # A frame of the session this socket has just left (it was sent before the group was)
        # would land in the next session's transcript. Events without a group come from
        # workers of an earlier version.
        if (
            event.get("sender") != self.channel_name
            and event.get("group", self.group) == self.group
        ):
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

    async def chat_session(self, event: dict[str, Any]) -> None:
        """Another socket of this owner created a session with its first message.

        A member of that session already (see :meth:`_enter_created`) takes it as a hello. Any
        other socket opens it: the owner has one active session, so this socket's own one is
        over, or it had none.
        """
        if event.get("sender") == self.channel_name or not self.connected:
            return
        if event.get("group") == self.group:
            self.peers.add(event["sender"])
            await self._layer(
                "send",
                event["sender"],
                {"type": "chat.here", "sender": self.channel_name, "group": self.group},
            )
            return
        try:
            session_id = uuid.UUID(hex=str(event.get("session_id")))
        except ValueError:
            return
        await self._follow(session_id)

    async def chat_closed(self, event: dict[str, Any]) -> None:
        if event.get("sender") != self.channel_name and event.get("group") == self.group:
            self.ended = "closed"
            self.worker.stop_all()
            service.stop_session(event["session_id"])
            await self.send_frame(protocol.closed_frame(event["session_id"]))

    async def chat_stop(self, event: dict[str, Any]) -> None:
        """``stop`` pressed in another socket of the session: stop its answers in this process.

        An answer whose process no longer has a socket of the session gets no group message;
        the ``stop`` then only works from a socket on that process (or the backstop ends it).
        """
        if event.get("sender") != self.channel_name and event.get("group") == self.group:
            service.stop_session(event["session_id"])

    async def _leave(self) -> None:
        if self.group:
            # Any answer still streaming goes on in its own task and now relays via the group.
            await self._layer(
                "group_send", self.group, {"type": "chat.bye", "sender": self.channel_name}
            )
            await self._layer("group_discard", self.group, self.channel_name)
        if self.owner_group:
            await self._layer("group_discard", self.owner_group, self.channel_name)
