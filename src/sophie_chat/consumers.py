"""ChatConsumer: the WebSocket edge of the chat (protocol v1, docs/protocol.rst).

Thin by design: it authenticates, parses frames with :mod:`sophie_chat.protocol`, and hands the
work to :class:`~sophie_chat.conversation.manager.ChatManager` and the reply worker of
:mod:`sophie_chat.conversation.service`.

Fan-out to the session's other sockets is :class:`~sophie_chat.conversation.fanout.SessionFanout`.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from contextlib import suppress
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError
from django.utils import translation
from django.utils.translation import gettext as _

from sophie_chat import protocol, ratelimit
from sophie_chat.analytics import metrics
from sophie_chat.conf import get_config
from sophie_chat.conversation import intents, service
from sophie_chat.conversation.fanout import SessionFanout
from sophie_chat.conversation.manager import ChatManager, LoggedOut, Owner, SessionEnded
from sophie_chat.conversation.types import still_logged_in
from sophie_chat.logging import get_logger
from sophie_chat.protocol import CloseCode, ErrorCode
from sophie_chat.security import origin_allowed

logger = get_logger(__name__)

MAX_INVALID_IN_A_ROW = 20
MAX_TOO_LARGE_IN_A_ROW = 3
#: Frames that read or change the session: checked against a logout in another tab first.
_NEEDS_LOGIN_CHECK = frozenset({"resume", "history", "rating", "close"})
MAX_QUEUED_REPLIES = 5
_AVAILABILITY_ERRORS = (DatabaseError, OSError)


def _language(scope: dict[str, Any]) -> str:
    """The visitor's language: Django's language cookie, then Accept-Language, then default."""
    supported = {code.lower() for code, _name in settings.LANGUAGES}
    candidates = [scope.get("cookies", {}).get(settings.LANGUAGE_COOKIE_NAME, "")]
    for name, value in scope.get("headers", []):
        if name == b"accept-language":
            header = value.decode("latin1")[:200]
            candidates += [part.split(";")[0].strip() for part in header.split(",")]
    for candidate in candidates:
        code = candidate.lower().replace("_", "-")
        for option in (code, code.split("-")[0]):
            if option and option in supported:
                return option
    return str(get_config()["DEFAULT_LANGUAGE"])


class ChatConsumer(SessionFanout, AsyncWebsocketConsumer):
    """One browser tab's chat socket."""

    async def connect(self) -> None:
        self.connected = False
        self.counted = False  # in the active-connections gauge
        self.session_id: uuid.UUID | None = None
        self.ended: str | None = None  # "closed"/"expired" once the session is over
        self.group = ""
        self.peers: set[str] = set()
        self.invalid = self.too_large = 0
        self.recent_acks: OrderedDict[str, int] = OrderedDict()
        self.worker = service.ReplyWorker(self._deliver)
        self.language = _language(self.scope)
        offered = self.scope.get("subprotocols") or []
        # Checked here too, not only by ChatOriginValidator, so that a site which mounts
        # websocket_urlpatterns by hand and forgets the validator is not open to cross-site use.
        if (offered and protocol.SUBPROTOCOL not in offered) or not origin_allowed(self.scope):
            await self.close()  # before accept: the handshake is refused
            return
        await self.accept(protocol.SUBPROTOCOL if offered else None)
        user = self.scope.get("user")
        self.session_key = getattr(self.scope.get("session"), "session_key", None) or ""
        if user is not None and user.is_authenticated:
            self.owner, self.user = Owner(user_id=user.pk), user
        elif not get_config()["ALLOW_ANONYMOUS"]:
            await self.close(CloseCode.NOT_AUTHENTICATED, "login required")
            return
        elif not self.session_key:
            # Anonymous chats belong to a Django session; the widget's tag makes sure one exists.
            await self.close(CloseCode.NOT_AUTHENTICATED, "no session cookie")
            return
        else:
            self.owner, self.user = Owner(visitor_key=self.session_key), None
        self.connected = True
        self.counted = True
        metrics.connection_opened()
        await self._open_session()

    async def _open_session(
        self, notice: str | None = None, *, message_id: str | None = None
    ) -> bool:
        """Load (or start) the owner's session and send the ``session`` frame.

        On connect a database failure closes the socket (1011: the widget reconnects later);
        while handling a message it only refuses that message.
        """
        try:
            state = await ChatManager.open_session(
                self.owner,
                user=self.user,
                language=self.language,
                notice=notice,
                with_messages=False,
            )
            await self._join(state.id)
            # Read after joining the group: anything stored from now on also arrives live. Even
            # for a session this connect just started: another tab may have found it and stored
            # a message before this socket joined.
            messages, has_more = await ChatManager.history(
                self.owner, state.id, protocol.MAX_SEQ, int(get_config()["HISTORY_PAGE_SIZE"])
            )
        except _AVAILABILITY_ERRORS:
            logger.exception("ws_open_failed")
            await self.send_error(ErrorCode.UNAVAILABLE, id=message_id)
            if message_id is None:
                await self.close(1011)
            return False
        self.session_id, self.ended, self.context = state.id, None, state.context
        self.user_type, self.session_language = state.user_type, state.language
        config = get_config()
        last_seq = max([state.last_seq, *(m["seq"] for m in messages)])
        await self.send_frame(
            protocol.session_frame(
                session_id=str(state.id),
                status=state.status,
                user_type=state.user_type,
                language=state.language,
                assistant_name=str(config["ASSISTANT_NAME"]),
                messages=messages,
                has_more=has_more,
                last_seq=last_seq,
                new=state.new,
                notice=state.notice,
                limits={
                    "max_message_length": int(config["MAX_MESSAGE_LENGTH"]),
                    "max_frame_bytes": int(config["MAX_FRAME_BYTES"]),
                    "history_page_size": int(config["HISTORY_PAGE_SIZE"]),
                },
            )
        )
        return True

    async def disconnect(self, code: int) -> None:
        self.connected = False
        if getattr(self, "counted", False):
            self.counted = False
            metrics.connection_closed()
        await self._leave()

    # --- frames in -------------------------------------------------------------------------

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        # Frames the client sent before the close are still delivered to receive(); answering
        # them would be a send after close, which the ASGI server refuses with an exception.
        self.connected = False
        await super().close(code, reason)

    async def send_frame(self, frame: dict[str, Any]) -> None:
        if self.connected:
            await self.send(text_data=protocol.dumps(frame))

    async def send_error(self, code: ErrorCode, **kwargs: Any) -> None:
        with translation.override(self.language):
            await self.send_frame(protocol.error_frame(code, **kwargs))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.connected or self.session_id is None:
            return
        config = get_config()
        limit = int(config["MAX_FRAME_BYTES"])
        if text_data is None:
            await self._refuse(protocol.ProtocolError(ErrorCode.INVALID))  # binary frames
            return
        if len(text_data) > limit or (
            len(text_data) * 4 > limit and len(text_data.encode("utf-8", "surrogatepass")) > limit
        ):
            self.too_large += 1
            await self.send_error(ErrorCode.FRAME_TOO_LARGE)
            if self.too_large >= MAX_TOO_LARGE_IN_A_ROW:
                await self.close(CloseCode.FRAME_TOO_LARGE)
            return
        self.too_large = 0
        try:
            frame = protocol.parse_client_frame(
                text_data,
                max_message_length=int(config["MAX_MESSAGE_LENGTH"]),
                max_history_page_size=int(config["MAX_HISTORY_PAGE_SIZE"]),
            )
        except protocol.ProtocolError as exc:
            await self._refuse(exc)
            return
        except (ValueError, TypeError):
            # A parser slip must cost the sender an error frame, never the socket.
            logger.exception("ws_frame_parse_failed")
            await self._refuse(protocol.ProtocolError(ErrorCode.INVALID))
            return
        self.invalid = 0
        try:
            if frame.type.value in _NEEDS_LOGIN_CHECK and not await self._still_logged_in():
                await self.close(CloseCode.SESSION_GONE, _("You have been logged out."))
                return
            await getattr(self, f"on_{frame.type.value}")(frame)
        except Exception:
            # Never let a handler kill the socket; the log has no message text.
            logger.exception("ws_handler_failed", frame_type=frame.type.value)
            await self.send_error(ErrorCode.UNAVAILABLE, id=getattr(frame, "id", None))

    async def _still_logged_in(self) -> bool:
        # `message` checks inside its own database unit; these frames read or change the
        # session too, so a logout in another tab must end them as well.
        if self.owner.user_id is None or not self.session_key:
            return True
        return bool(
            await database_sync_to_async(still_logged_in)(self.session_key, self.owner.user_id)
        )

    async def _refuse(self, exc: protocol.ProtocolError) -> None:
        self.invalid += 1
        logger.info("ws_frame_refused", code=exc.code.value, in_a_row=self.invalid)
        await self.send_error(exc.code, id=exc.id)
        if self.invalid >= MAX_INVALID_IN_A_ROW:
            await self.close(CloseCode.INVALID)

    async def on_message(self, frame: protocol.MessageFrame) -> None:
        if frame.id in self.recent_acks:  # a resend on this socket: no quota, no query
            await self.send_frame(protocol.ack_frame(frame.id, self.recent_acks[frame.id]))
            return
        if self.worker.pending >= MAX_QUEUED_REPLIES:
            await self.send_error(ErrorCode.BUSY, id=frame.id)
            return
        client = self.scope.get("client") or [None]
        try:
            decision = await ratelimit.check(
                user_id=self.owner.user_id, visitor_key=self.owner.visitor_key, ip=client[0]
            )
        except ratelimit.LimiterUnavailable:
            await self.send_error(ErrorCode.UNAVAILABLE, id=frame.id)
            return
        if not decision.allowed:
            # A resend of a stored message (the widget's outbox after a reconnect) is not a new
            # message: acknowledge it instead of refusing it. One query, on this path only.
            seq = None
            with suppress(*_AVAILABILITY_ERRORS):
                seq = await ChatManager.stored_seq(self.owner, self.session_id, frame.id)
            if seq is not None:
                await self.send_frame(protocol.ack_frame(frame.id, seq))
                return
            await self.send_error(
                ErrorCode.RATE_LIMITED, retry_after=decision.retry_after, id=frame.id
            )
            with suppress(*_AVAILABILITY_ERRORS):
                await ChatManager.count_rate_limited(self.session_id)
            return
        guess = frame.page.as_dict() if frame.page else dict(self.context.get("page") or {})
        intent = intents.classify(frame.text, self.session_language)
        # Looked up beside the store rather than after it (a resend or a refused message
        # wastes one lookup; every answered one starts sooner).
        lookup = service.look_up_knowledge(
            frame.text,
            language=self.session_language,
            user_type=self.user_type,
            page=guess,
            intent=intent,
            user_id=self.owner.user_id,
            user_context=self.context.get("user"),
            # A message after the session ended opens a new one: no history, so its answer may
            # come from the cache, which is then read beside the store too.
            first=bool(self.ended),
        )
        if self.ended and not await self._open_session(notice=self.ended, message_id=frame.id):
            lookup.cancel()
            return
        stored = await self._store(frame, intent)
        if stored is None or stored[1].duplicate:
            lookup.cancel()
        if stored is None:
            return
        intent, result = stored
        self.recent_acks[frame.id] = result.seq
        while len(self.recent_acks) > 50:
            self.recent_acks.popitem(last=False)
        await self.send_frame(protocol.ack_frame(frame.id, result.seq))
        if result.duplicate:
            return
        if self.peers:
            await self._layer(
                "group_send",
                self.group,
                {
                    "type": "chat.frame",
                    "frame": protocol.user_message_frame(result.message),
                    "sender": self.channel_name,
                },
            )
        self.context = result.context
        self.worker.submit(
            service.ReplyJob(
                session_id=self.session_id,
                group=self.group,
                seq=result.reply_seq,
                reply_to=result.seq,
                text=frame.text,
                intent=intent,
                language=result.language or self.session_language,
                user_type=result.user_type or self.user_type,
                user_id=self.owner.user_id,
                page=frame.page.as_dict() if frame.page else dict(self.context.get("page") or {}),
                user_context=dict(self.context.get("user") or {}),
                history=result.history,
                created_at=result.created_at,
                consecutive_fallbacks=result.consecutive_fallbacks,
                lookup=lookup,
            )
        )

    async def _store(self, frame: protocol.MessageFrame, intent: str) -> tuple[str, Any] | None:
        context = {**self.context, "page": frame.page.as_dict()} if frame.page else None
        # A user authenticated by the site's own middleware (a token, no Django session) has no
        # session to log out of.
        auth = (
            (self.session_key, self.owner.user_id)
            if self.owner.user_id is not None and self.session_key
            else None
        )
        for _attempt in range(2):
            try:
                return await service.accept_message(
                    self.owner,
                    self.session_id,
                    client_id=frame.id,
                    text=frame.text,
                    page=frame.page.as_dict() if frame.page else None,
                    context=context,
                    language=self.session_language,
                    auth=auth,
                    intent=intent,
                )
            except LoggedOut:
                await self.close(CloseCode.SESSION_GONE, _("You have been logged out."))
                return None
            except SessionEnded as exc:
                # Closed in another tab or expired while idle: continue in a fresh session.
                notice = exc.status if exc.status in ("closed", "expired") else None
                if not await self._open_session(notice=notice, message_id=frame.id):
                    return None
            except _AVAILABILITY_ERRORS:
                logger.exception("message_store_failed")
                await self.send_error(ErrorCode.UNAVAILABLE, id=frame.id)
                return None
        await self.send_error(ErrorCode.UNAVAILABLE, id=frame.id)
        return None

    async def on_resume(self, frame: protocol.ResumeFrame) -> None:
        # This socket joined the session's group on connect, before this read.
        messages, has_more = await ChatManager.messages_after(
            self.owner, self.session_id, frame.after_seq
        )
        await self.send_frame(protocol.history_frame("resume", messages, has_more))

    async def on_history(self, frame: protocol.HistoryFrame) -> None:
        messages, has_more = await ChatManager.history(
            self.owner, self.session_id, frame.before_seq, frame.limit
        )
        await self.send_frame(protocol.history_frame("page", messages, has_more))

    async def on_page(self, frame: protocol.PageFrame) -> None:
        self.context = {**self.context, "page": frame.page.as_dict()}
        await ChatManager.update_context(self.owner, self.session_id, self.context)

    async def on_rating(self, frame: protocol.RatingFrame) -> None:
        outcome = await ChatManager.rate(self.owner, self.session_id, frame.score, frame.comment)
        if outcome == "ok":
            await self.send_frame(protocol.rated_frame(frame.score))
        else:
            code = ErrorCode.SESSION_EXPIRED if outcome == "expired" else ErrorCode.NOT_FOUND
            await self.send_error(code)

    async def on_close(self, frame: protocol.SimpleFrame) -> None:
        self.worker.stop_all()
        service.stop_session(self.session_id)  # answers asked from other sockets here too
        await ChatManager.close(self.owner, self.session_id)
        self.ended = "closed"
        await self._layer(
            "group_send",
            self.group,
            {
                "type": "chat.closed",
                "sender": self.channel_name,
                "group": self.group,
                "session_id": str(self.session_id),
            },
        )
        await self.send_frame(protocol.closed_frame(str(self.session_id)))

    async def on_stop(self, frame: protocol.SimpleFrame) -> None:
        # The answer may stream from another tab, or from a page the visitor has left: stop the
        # session's answers in this process, and ask the other processes through the group.
        self.worker.stop()
        service.stop_session(self.session_id)
        await self._layer(
            "group_send",
            self.group,
            {
                "type": "chat.stop",
                "sender": self.channel_name,
                "group": self.group,
                "session_id": str(self.session_id),
            },
        )

    async def on_link(self, frame: protocol.LinkFrame) -> None:
        await ChatManager.count_link(self.owner, self.session_id, frame.message_seq)

    async def on_ping(self, frame: protocol.SimpleFrame) -> None:
        await self.send_frame(protocol.pong_frame())
