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
from sophie_chat.conversation.creation import NewSession
from sophie_chat.conversation.fanout import SessionFanout, owner_group, session_group
from sophie_chat.conversation.manager import ChatManager, LoggedOut, Owner, SessionEnded
from sophie_chat.conversation.types import ACTIVE, SessionState, StoredMessage, still_logged_in
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
        # None until the owner has an active session: the first message creates it.
        self.session_id: uuid.UUID | None = None
        self.ended: str | None = None  # "closed"/"expired" once the session is over
        self.group = ""
        self.owner_group = ""
        self.context: dict[str, Any] = {}
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

    async def _open_session(self) -> None:
        """Find the owner's active session and send the ``session`` frame.

        A visitor without one gets ``session_id`` null and nothing is stored: their first
        message creates the session (:mod:`sophie_chat.conversation.creation`). A database
        failure closes the socket (1011: the widget reconnects later).
        """
        # The owner's group first: a session created by another tab after the lookup below is
        # then announced to this socket (chat.session).
        self.owner_group = owner_group(self.owner)
        await self._layer("group_add", self.owner_group, self.channel_name)
        messages: list[dict[str, Any]] = []
        has_more = False
        try:
            state = await ChatManager.open_session(
                self.owner,
                user=self.user,
                language=self.language,
                with_messages=False,
                create=False,
            )
            if state.id is not None:
                await self._join(state.id)
                # Read after joining the group: anything stored from now on also arrives live.
                messages, has_more = await ChatManager.history(
                    self.owner, state.id, protocol.MAX_SEQ, self._page_size()
                )
        except _AVAILABILITY_ERRORS:
            logger.exception("ws_open_failed")
            await self.send_error(ErrorCode.UNAVAILABLE)
            await self.close(1011)
            return
        self._adopt(state)
        await self._send_session(state, messages, has_more)

    def _adopt(self, state: SessionState) -> None:
        self.session_id, self.ended, self.context = state.id, None, state.context
        self.user_type, self.session_language = state.user_type, state.language

    @staticmethod
    def _page_size() -> int:
        return int(get_config()["HISTORY_PAGE_SIZE"])

    async def _send_session(
        self, state: SessionState, messages: list[dict[str, Any]], has_more: bool
    ) -> None:
        config = get_config()
        await self.send_frame(
            protocol.session_frame(
                session_id=str(state.id) if state.id is not None else None,
                status=state.status,
                user_type=state.user_type,
                language=state.language,
                assistant_name=str(config["ASSISTANT_NAME"]),
                messages=messages,
                has_more=has_more,
                last_seq=max([state.last_seq, *(m["seq"] for m in messages)]),
                new=state.new,
                notice=state.notice,
                limits={
                    "max_message_length": int(config["MAX_MESSAGE_LENGTH"]),
                    "max_frame_bytes": int(config["MAX_FRAME_BYTES"]),
                    "history_page_size": int(config["HISTORY_PAGE_SIZE"]),
                },
            )
        )

    async def _follow(self, session_id: uuid.UUID) -> None:
        """Open a session another socket of the owner created (``chat.session``).

        As a returning connect would: join its group and greet it, then read the last page (so
        nothing falls between the read and the live stream), then send the ``session`` frame.
        The old group is left only once the new session is known to be active; if it is not
        (closed again already), this socket stays as it was.
        """
        group = session_group(session_id)
        await self._layer("group_add", group, self.channel_name)
        await self._layer("group_send", group, {"type": "chat.hello", "sender": self.channel_name})
        logged_out = False
        try:
            state, messages, has_more = await ChatManager.open_active(
                self.owner, session_id, self._page_size(), self._auth()
            )
        except LoggedOut:
            state, logged_out = None, True
        except _AVAILABILITY_ERRORS:
            logger.exception("ws_follow_failed")
            state = None
        if state is None:
            await self._layer(
                "group_send", group, {"type": "chat.bye", "sender": self.channel_name}
            )
            await self._layer("group_discard", group, self.channel_name)
            if logged_out:
                await self.close(CloseCode.SESSION_GONE, _("You have been logged out."))
            return
        if self.group and self.group != group:
            await self._layer("group_discard", self.group, self.channel_name)
        self.group, self.peers = group, set()
        # "closed"/"expired" when the session this socket showed ended; the widget then starts
        # its transcript afresh, as after its own close.
        state.notice = self.ended if self.session_id is not None else None
        self._adopt(state)
        await self._send_session(state, messages, has_more)

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
        if not self.connected:
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

    def _auth(self) -> tuple[str, int] | None:
        """What the login check needs, for a logged-in user with a Django session.

        A user authenticated by the site's own middleware (a token, no Django session) has no
        session to log out of.
        """
        if self.owner.user_id is not None and self.session_key:
            return self.session_key, self.owner.user_id
        return None

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
            await self._refuse_rate_limited(frame, decision.retry_after)
            return
        left = self.group
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
            # Without a live session the message opens a new one: no history, so its answer
            # may come from the cache, which is then read beside the store too.
            first=self.session_id is None or bool(self.ended),
        )
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
        # A socket that has just joined a session another tab created knows no peers yet.
        if self.peers or (result.session_id is not None and not result.created):
            await self._layer(
                "group_send",
                self.group,
                {
                    "type": "chat.frame",
                    "frame": protocol.user_message_frame(result.message),
                    "sender": self.channel_name,
                    "group": self.group,
                },
            )
        self.context = result.context
        assert self.session_id is not None  # set by _store
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
        if result.created:  # off the path to the first delta: the answer is on its way
            await self._enter_created(self.session_id, left)

    async def _refuse_rate_limited(self, frame: protocol.MessageFrame, retry_after: int) -> None:
        # A resend of a stored message (the widget's outbox after a reconnect) is not a new
        # message: acknowledge it instead of refusing it. One query, on this path only.
        seq = None
        if self.session_id is not None:
            with suppress(*_AVAILABILITY_ERRORS):
                seq = await ChatManager.stored_seq(self.owner, self.session_id, frame.id)
        if seq is not None:
            await self.send_frame(protocol.ack_frame(frame.id, seq))
            return
        await self.send_error(ErrorCode.RATE_LIMITED, retry_after=retry_after, id=frame.id)
        if self.session_id is not None:
            with suppress(*_AVAILABILITY_ERRORS):
                await ChatManager.count_rate_limited(self.session_id)

    async def _store(
        self, frame: protocol.MessageFrame, intent: str
    ) -> tuple[str, StoredMessage] | None:
        """Store the message (one database unit); None if refused, the error frame sent.

        Without a live session (none yet, closed or expired) the unit creates one with the
        message. The socket then moves to the session the message went into, and its
        ``session`` frame goes out before the ``ack``, so the client knows the session of the
        ack's ``seq``.
        """
        page = frame.page.as_dict() if frame.page else None
        auth = self._auth()
        session_id = None if self.ended else self.session_id
        notice = self.ended
        for _attempt in range(2):
            new = None
            if session_id is None:
                new = NewSession(
                    user_type=self.user_type,
                    language=self.language,
                    context={**self.context, "page": page} if page else dict(self.context),
                )
            try:
                intent, result = await service.accept_message(
                    self.owner,
                    session_id,
                    client_id=frame.id,
                    text=frame.text,
                    page=page,
                    context={**self.context, "page": page} if page else None,
                    language=self.session_language,
                    auth=auth,
                    new=new,
                    intent=intent,
                )
            except LoggedOut:
                await self.close(CloseCode.SESSION_GONE, _("You have been logged out."))
                return None
            except SessionEnded as exc:
                if session_id is None:  # every attempt to create one lost a race
                    break
                # Closed in another tab or expired while idle: continue in a fresh session.
                notice = exc.status if exc.status in ("closed", "expired") else None
                session_id = None
                continue
            except _AVAILABILITY_ERRORS:
                logger.exception("message_store_failed")
                await self.send_error(ErrorCode.UNAVAILABLE, id=frame.id)
                return None
            if result.session_id is not None:  # the message went into another session
                await self._moved(result, notice or result.notice)
            return intent, result
        await self.send_error(ErrorCode.UNAVAILABLE, id=frame.id)
        return None

    async def _moved(self, result: StoredMessage, notice: str | None) -> None:
        """This socket's message went into another session: adopt it, send its ``session`` frame.

        A session the message created is empty but for the message: the frame carries no
        messages, and the group is joined after the ``ack`` (:meth:`_enter_created`). A session
        another tab had just created (two first messages racing) is joined now, with its last
        page before this message read after joining, as on connect.
        """
        assert result.session_id is not None
        messages: list[dict[str, Any]] = []
        has_more = False
        if result.created:
            # Frames of the answer are addressed to the new group from the start.
            self.group, self.peers = session_group(result.session_id), set()
        else:
            await self._join(result.session_id)
            with suppress(*_AVAILABILITY_ERRORS):
                messages, has_more = await ChatManager.history(
                    self.owner, result.session_id, result.seq, self._page_size()
                )
        state = SessionState(
            id=result.session_id,
            status=ACTIVE,
            user_type=result.user_type or self.user_type,
            language=result.language or self.language,
            context=result.context,
            last_seq=result.seq - 1,
            new=result.created,
            notice=notice,
        )
        self._adopt(state)
        await self._send_session(state, messages, has_more)

    # A socket without a session (none yet) answers the frames that need one from memory: there
    # is nothing stored to read or change.

    async def on_resume(self, frame: protocol.ResumeFrame) -> None:
        if self.session_id is None:
            await self.send_frame(protocol.history_frame("resume", [], False))
            return
        # This socket joined the session's group on connect, before this read.
        messages, has_more = await ChatManager.messages_after(
            self.owner, self.session_id, frame.after_seq
        )
        await self.send_frame(protocol.history_frame("resume", messages, has_more))

    async def on_history(self, frame: protocol.HistoryFrame) -> None:
        if self.session_id is None:
            await self.send_frame(protocol.history_frame("page", [], False))
            return
        messages, has_more = await ChatManager.history(
            self.owner, self.session_id, frame.before_seq, frame.limit
        )
        await self.send_frame(protocol.history_frame("page", messages, has_more))

    async def on_page(self, frame: protocol.PageFrame) -> None:
        self.context = {**self.context, "page": frame.page.as_dict()}
        # Without a live session the page is kept here and stored with the first message.
        if self.session_id is not None and not self.ended:
            await ChatManager.update_context(self.owner, self.session_id, self.context)

    async def on_rating(self, frame: protocol.RatingFrame) -> None:
        outcome = "not_found"
        if self.session_id is not None:
            outcome = await ChatManager.rate(
                self.owner, self.session_id, frame.score, frame.comment
            )
        if outcome == "ok":
            await self.send_frame(protocol.rated_frame(frame.score))
        else:
            code = ErrorCode.SESSION_EXPIRED if outcome == "expired" else ErrorCode.NOT_FOUND
            await self.send_error(code)

    async def on_close(self, frame: protocol.SimpleFrame) -> None:
        if self.session_id is None:
            await self.send_frame(protocol.closed_frame(None))
            return
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
        if self.session_id is None:
            return
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
        if self.session_id is not None:
            await ChatManager.count_link(self.owner, self.session_id, frame.message_seq)

    async def on_ping(self, frame: protocol.SimpleFrame) -> None:
        await self.send_frame(protocol.pong_frame())
