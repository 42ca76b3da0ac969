"""The WebSocket protocol v1: frame types, error and close codes, one parser, frame builders.

Every client frame goes through :func:`parse_client_frame`, which either returns a typed frame or
raises :class:`ProtocolError` with a stable code. Free text is normalised rather than refused
where a person could have typed it: ``\\r\\n`` becomes ``\\n``, other control characters and the
bidi embedding/override/isolate controls are removed (they can make a message display differently
from what is stored). Machine fields (ids, types, numbers) are refused instead. See
docs/protocol.rst.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Union

from django.utils.translation import gettext_lazy as _

SUBPROTOCOL = "sophie-chat.v1"

MAX_SEQ = 2**31 - 1
MAX_URL_LENGTH = 2048
MAX_TITLE_LENGTH = 300
MAX_COMMENT_LENGTH = 2000


class ClientType(str, Enum):
    MESSAGE = "message"
    RESUME = "resume"
    HISTORY = "history"
    PAGE = "page"
    RATING = "rating"
    CLOSE = "close"
    STOP = "stop"
    LINK = "link"
    PING = "ping"


class ServerType(str, Enum):
    SESSION = "session"
    ACK = "ack"
    USER_MESSAGE = "user.message"
    ASSISTANT_START = "assistant.start"
    ASSISTANT_DELTA = "assistant.delta"
    ASSISTANT_DONE = "assistant.done"
    HISTORY = "history"
    RATED = "rated"
    CLOSED = "closed"
    PONG = "pong"
    ERROR = "error"


class ErrorCode(str, Enum):
    INVALID = "invalid"
    TOO_LONG = "too_long"
    FRAME_TOO_LARGE = "frame_too_large"
    RATE_LIMITED = "rate_limited"
    SESSION_EXPIRED = "session_expired"
    SESSION_CLOSED = "session_closed"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"
    AI_UNAVAILABLE = "ai_unavailable"
    BUSY = "busy"


class CloseCode(int, Enum):
    INVALID = 4400
    NOT_AUTHENTICATED = 4401
    FORBIDDEN = 4403
    SESSION_GONE = 4408
    FRAME_TOO_LARGE = 4413


ERROR_MESSAGES: dict[ErrorCode, Any] = {
    ErrorCode.INVALID: _("This message could not be understood."),
    ErrorCode.TOO_LONG: _("Your message is too long. Please shorten it."),
    ErrorCode.FRAME_TOO_LARGE: _("This message is too large to send."),
    ErrorCode.RATE_LIMITED: _("You are sending messages too fast. Please wait a moment."),
    ErrorCode.SESSION_EXPIRED: _("This conversation has expired."),
    ErrorCode.SESSION_CLOSED: _("This conversation has been closed."),
    ErrorCode.FORBIDDEN: _("You are not allowed to do this."),
    ErrorCode.NOT_FOUND: _("This item was not found."),
    ErrorCode.UNAVAILABLE: _(
        "The chat is temporarily unavailable. Your message was not saved; please send it again."
    ),
    ErrorCode.AI_UNAVAILABLE: _("The assistant could not answer right now. Please try again."),
    ErrorCode.BUSY: _("Please wait for the current answer before sending more messages."),
}


class ProtocolError(Exception):
    """A frame the server refuses; ``code`` is stable, ``message`` is translated for people."""

    def __init__(self, code: ErrorCode, message: Any = None, *, id: str | None = None) -> None:
        self.code = ErrorCode(code)
        self.message = message if message is not None else ERROR_MESSAGES[self.code]
        self.id = id
        super().__init__(f"{self.code.value}: {self.message}")


# --- client frames ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PageContext:
    url: str = ""
    title: str = ""
    referrer: str = ""
    status: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "title": self.title,
            "referrer": self.referrer,
            "status": self.status,
        }


@dataclass(frozen=True)
class MessageFrame:
    id: str
    text: str
    page: PageContext | None = None
    type: ClientType = ClientType.MESSAGE


@dataclass(frozen=True)
class ResumeFrame:
    after_seq: int
    type: ClientType = ClientType.RESUME


@dataclass(frozen=True)
class HistoryFrame:
    before_seq: int
    limit: int
    type: ClientType = ClientType.HISTORY


@dataclass(frozen=True)
class PageFrame:
    page: PageContext = field(default_factory=PageContext)
    type: ClientType = ClientType.PAGE


@dataclass(frozen=True)
class RatingFrame:
    score: int
    comment: str = ""
    type: ClientType = ClientType.RATING


@dataclass(frozen=True)
class LinkFrame:
    message_seq: int
    url: str
    type: ClientType = ClientType.LINK


@dataclass(frozen=True)
class SimpleFrame:
    """``close``, ``stop`` and ``ping``: frames without fields."""

    type: ClientType


ClientFrame = Union[  # noqa: UP007 - a runtime alias must work on Python 3.10
    MessageFrame, ResumeFrame, HistoryFrame, PageFrame, RatingFrame, LinkFrame, SimpleFrame
]

_FIELDS: dict[ClientType, tuple[set[str], set[str]]] = {  # (required, optional)
    ClientType.MESSAGE: ({"id", "text"}, {"page"}),
    ClientType.RESUME: ({"after_seq"}, set()),
    ClientType.HISTORY: ({"before_seq"}, {"limit"}),
    ClientType.PAGE: (set(), {"url", "title", "referrer", "status"}),
    ClientType.RATING: ({"score"}, {"comment"}),
    ClientType.CLOSE: (set(), set()),
    ClientType.STOP: (set(), set()),
    ClientType.LINK: ({"message_seq", "url"}, set()),
    ClientType.PING: (set(), set()),
}
_PAGE_FIELDS = {"url", "title", "referrer", "status"}

_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)
# C0 controls except \t and \n, DEL, C1 controls; bidi embeddings, overrides and isolates.
_STRIP_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
# \Z, not $: $ also matches before a trailing newline, which would let "/x\n" through.
_URL_RE = re.compile(r"^(?:https?://[^\s]+|/[^\s]*|)\Z", re.IGNORECASE)
_LINK_RE = re.compile(r"^(?:https?://|mailto:|tel:|/|#)[^\s]*\Z", re.IGNORECASE)


def _invalid(detail: str = "") -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")  # NaN, Infinity, -Infinity


def _small_int(text: str) -> int:
    if len(text.lstrip("-")) > 12:
        raise ValueError("number too large")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Duplicate keys are ambiguous (which one wins differs between parsers): refuse them.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _load(raw: str | bytes) -> Any:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid() from None
    try:
        return json.loads(
            raw,
            parse_constant=_no_constants,
            parse_int=_small_int,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except (ValueError, RecursionError):
        raise _invalid() from None


def clean_text(value: Any, *, max_length: int, required: bool = True) -> str:
    """Normalise free text; refuse non-strings, lone surrogates, empty or too long text."""
    if not isinstance(value, str):
        raise _invalid()
    if _SURROGATE_RE.search(value):
        raise _invalid()
    text = _STRIP_RE.sub("", value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if required and not text:
        raise _invalid()
    if len(text) > max_length:
        raise ProtocolError(ErrorCode.TOO_LONG)
    return text


def _int(value: Any, *, low: int, high: int) -> int:
    # bool is an int subclass; 1.0 is not an integer on the wire.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid()
    return value


def _uuid(value: Any) -> str:
    if not isinstance(value, str) or not _UUID_RE.match(value):
        raise _invalid()
    return str(uuid.UUID(value))


def _url(value: Any, pattern: re.Pattern[str] = _URL_RE, *, truncate: bool = False) -> str:
    if not isinstance(value, str):
        raise _invalid()
    if truncate:
        value = value[:MAX_URL_LENGTH]
    if len(value) > MAX_URL_LENGTH or _SURROGATE_RE.search(value):
        raise _invalid()
    if _STRIP_RE.search(value) or not pattern.match(value):
        raise _invalid()
    return value


def parse_page(data: Any) -> PageContext:
    """Validate the navigation context a widget reports (``page`` frame or ``message.page``).

    Over-long values are cut, not refused: a page with a very long URL or title must not stop
    its visitor from chatting (the frame size limit bounds them anyway).
    """
    if not isinstance(data, dict) or set(data) - _PAGE_FIELDS:
        raise _invalid()
    status = data.get("status")
    if status is not None:
        status = _int(status, low=100, high=599)
    title = data.get("title") or ""
    return PageContext(
        url=_url(data.get("url") or "", truncate=True),
        title=clean_text(title, max_length=len(title), required=False)[:MAX_TITLE_LENGTH],
        referrer=_url(data.get("referrer") or "", truncate=True),
        status=status,
    )


def parse_client_frame(
    raw: str | bytes,
    *,
    max_message_length: int | None = None,
    max_history_page_size: int | None = None,
) -> ClientFrame:
    """Parse and validate one client frame, or raise :class:`ProtocolError`."""
    if max_message_length is None or max_history_page_size is None:
        from sophie_chat.conf import get_config

        config = get_config()
        max_message_length = max_message_length or int(config["MAX_MESSAGE_LENGTH"])
        max_history_page_size = max_history_page_size or int(config["MAX_HISTORY_PAGE_SIZE"])
    data = _load(raw)
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise _invalid()
    try:
        kind = ClientType(data["type"])
    except ValueError:
        raise _invalid() from None
    required, optional = _FIELDS[kind]
    keys = set(data) - {"type"}
    if not required <= keys or keys - required - optional:
        raise _invalid()
    if kind is ClientType.MESSAGE:
        frame_id = _uuid(data["id"])
        try:
            text = clean_text(data["text"], max_length=max_message_length)
            page = parse_page(data["page"]) if data.get("page") is not None else None
        except ProtocolError as exc:
            raise ProtocolError(exc.code, id=frame_id) from None
        return MessageFrame(id=frame_id, text=text, page=page)
    if kind is ClientType.RESUME:
        return ResumeFrame(after_seq=_int(data["after_seq"], low=0, high=MAX_SEQ))
    if kind is ClientType.HISTORY:
        limit = data.get("limit")
        # A larger page than allowed is served at the largest allowed size, not refused.
        limit = max_history_page_size if limit is None else _int(limit, low=1, high=MAX_SEQ)
        return HistoryFrame(
            before_seq=_int(data["before_seq"], low=1, high=MAX_SEQ),
            limit=min(limit, max_history_page_size),
        )
    if kind is ClientType.PAGE:
        return PageFrame(page=parse_page({k: v for k, v in data.items() if k != "type"}))
    if kind is ClientType.RATING:
        comment = data.get("comment") or ""
        return RatingFrame(
            score=_int(data["score"], low=1, high=5),
            comment=clean_text(comment, max_length=MAX_COMMENT_LENGTH, required=False),
        )
    if kind is ClientType.LINK:
        return LinkFrame(
            message_seq=_int(data["message_seq"], low=1, high=MAX_SEQ),
            url=_url(data["url"], _LINK_RE),
        )
    return SimpleFrame(type=kind)


# --- server frames ---------------------------------------------------------------------------


def error_frame(
    code: ErrorCode | str,
    message: Any = None,
    *,
    retry_after: int | None = None,
    id: str | None = None,
) -> dict[str, Any]:
    """An ``error`` frame; the message is translated into the active language."""
    code = ErrorCode(code)
    frame: dict[str, Any] = {
        "type": ServerType.ERROR.value,
        "code": code.value,
        "message": str(message if message is not None else ERROR_MESSAGES[code]),
    }
    if retry_after is not None:
        frame["retry_after"] = retry_after
    if id is not None:
        frame["id"] = id
    return frame


def session_frame(
    *,
    session_id: str | None,
    status: str,
    user_type: str,
    language: str,
    assistant_name: str,
    messages: list[dict[str, Any]],
    has_more: bool,
    last_seq: int,
    new: bool,
    limits: dict[str, int],
    notice: str | None = None,
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": ServerType.SESSION.value,
        "session_id": session_id,
        "status": status,
        "user_type": user_type,
        "language": language,
        "assistant_name": assistant_name,
        "messages": messages,
        "has_more": has_more,
        "last_seq": last_seq,
        "new": new,
        "limits": limits,
    }
    if notice:
        frame["notice"] = notice
    return frame


def ack_frame(id: str, seq: int) -> dict[str, Any]:
    return {"type": ServerType.ACK.value, "id": id, "seq": seq}


def user_message_frame(message: dict[str, Any]) -> dict[str, Any]:
    return {"type": ServerType.USER_MESSAGE.value, "message": message}


def assistant_start_frame(seq: int, reply_to: int) -> dict[str, Any]:
    return {"type": ServerType.ASSISTANT_START.value, "seq": seq, "reply_to": reply_to}


def assistant_delta_frame(seq: int, index: int, text: str) -> dict[str, Any]:
    return {"type": ServerType.ASSISTANT_DELTA.value, "seq": seq, "index": index, "text": text}


def assistant_done_frame(seq: int, **fields: Any) -> dict[str, Any]:
    """``assistant.done``: text, html, source, intent, status and the optional keys if set."""
    frame: dict[str, Any] = {"type": ServerType.ASSISTANT_DONE.value, "seq": seq}
    frame.update({k: v for k, v in fields.items() if v is not None})
    return frame


def history_frame(mode: str, messages: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "type": ServerType.HISTORY.value,
        "mode": mode,
        "messages": messages,
        "has_more": has_more,
    }


def rated_frame(score: int) -> dict[str, Any]:
    return {"type": ServerType.RATED.value, "score": score}


def closed_frame(session_id: str | None) -> dict[str, Any]:
    return {"type": ServerType.CLOSED.value, "session_id": session_id}


def pong_frame() -> dict[str, Any]:
    return {"type": ServerType.PONG.value}


def dumps(frame: dict[str, Any]) -> str:
    """Serialise a server frame compactly; non-ASCII stays as UTF-8 (smaller than escapes)."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"), default=str)
