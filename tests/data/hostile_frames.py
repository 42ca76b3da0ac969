"""Hostile WebSocket frames for the bad-input suite (tests/security/test_bad_input.py).

Every frame here must be answered with an ``error`` frame or a documented close code, and none of
them may store anything. Each entry says what the server must answer: ``("error", codes)`` or
``("close", codes)``. Frames are built by code, not stored as JSON: several cannot be written as
a JSON file at all (lone surrogates sent raw, 10,000 levels of nesting, binary frames).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

# Limits of the server under test: the defaults (docs/configuration.rst).
MAX_MESSAGE_LENGTH = 2000
MAX_FRAME_BYTES = 16384
WS_MAX_SIZE = 16 * 1024 * 1024  # uvicorn's --ws-max-size default

INVALID = ("error", frozenset({"invalid"}))
TOO_LONG = ("error", frozenset({"too_long"}))
TOO_LARGE = ("error", frozenset({"frame_too_large"}))
BAD_UTF8 = ("close", frozenset({1007}))  # the server's WebSocket layer: invalid UTF-8
HUGE = ("close", frozenset({1009}))  # the server's WebSocket layer: message too big

INJECTIONS = [
    "' OR 1=1 --",
    "'; DROP TABLE sophie_chat_chatmessage; --",
    '" OR ""="',
    "1 UNION SELECT password FROM auth_user",
    "{{ 7*7 }}",
    "{% debug %}",
    "{{ settings.SECRET_KEY }}",
    "${7*7}",
    "<%= 7*7 %>",
    "#{7*7}",
    "__import__('os').system('id')",
    "<script>alert(1)</script>",
]


@dataclass(frozen=True)
class Frame:
    name: str
    data: str | bytes
    expect: tuple[str, frozenset[object]]
    # "text": a text frame; "binary": a binary frame; "raw": bytes sent as a text frame.
    kind: str = "text"


def _j(obj: object) -> str:
    return json.dumps(obj)


def _msg(**fields: object) -> str:
    return _j({"type": "message", "id": str(uuid.uuid4()), **fields})


def frames() -> list[Frame]:
    """The corpus: at least 150 frames, each with the answer the server must give."""
    out: list[Frame] = []

    def add(name: str, data: str | bytes, expect: tuple[str, frozenset[object]] = INVALID) -> None:
        out.append(Frame(name, data, expect))

    # Malformed JSON.
    for i, raw in enumerate(
        [
            "",
            " ",
            "{",
            "}",
            "{]",
            '{"type":',
            '{"type":"ping"',
            '{"type":"ping",}',
            "{'type':'ping'}",
            "{type:ping}",
            '{"type":"ping"} trailing',
            '{"type":"ping"}{"type":"ping"}',
            '/* c */ {"type":"ping"}',
            '\ufeff{"type":"ping"}',
            '{"type":"ping"',
            '{"type":"pi\\x6eg"}',
            '{"type":"\\u00"}',
            "ping",
            "undefined",
            '{"type":"ping"}\x00',
        ]
    ):
        add(f"malformed-{i}", raw)
    # Valid JSON that is not an object with a string type.
    for i, raw in enumerate(
        ["null", "true", "false", "0", "-1", '"ping"', "[]", '[{"type":"ping"}]', "{}"]
    ):
        add(f"not-an-object-{i}", raw)
    # Deep nesting: 10,000 levels (within and beyond the frame limit) and other shapes.
    add("nest-10000-open", "[" * 10_000)
    add("nest-10000-obj-open", '{"a":' * 3_000)
    add("nest-8000-array", "[" * 8_000 + "]" * 8_000)
    add("nest-10000-array", "[" * 10_000 + "]" * 10_000, TOO_LARGE)
    add(
        "nest-in-text",
        '{{"type":"message","id":"{}","text":{}}}'.format(uuid.uuid4(), "[" * 5000 + "]" * 5000),
    )
    add("nest-in-page", '{"type":"page","url":%s}' % ("{" + '"a":{' * 1000 + "}" * 1001))
    # Huge and non-finite numbers, in every numeric field.
    for field_name, kind in (
        ("after_seq", "resume"),
        ("before_seq", "history"),
        ("score", "rating"),
    ):
        for i, number in enumerate(
            [
                "1e400",
                "-1e400",
                "1" * 10_001,
                "9" * 13,
                "NaN",
                "Infinity",
                "-Infinity",
                "1e2",
                "0.5",
                "-7",
            ]
        ):
            add(f"number-{kind}-{i}", '{"type":"%s","%s":%s}' % (kind, field_name, number))  # noqa: UP031
    add("number-link-seq", '{"type":"link","message_seq":1e400,"url":"/x"}')
    add("number-history-limit", '{"type":"history","before_seq":5,"limit":' + "9" * 5000 + "}")
    add("number-page-status", '{"type":"page","status":1e400}')
    # Wrong types.
    for i, value in enumerate([None, 1, 1.5, True, [], {}, ["message"]]):
        add(f"type-of-type-{i}", _j({"type": value}))
    for i, value in enumerate(
        [None, 1, True, [], {}, "not-a-uuid", "", "0" * 36, str(uuid.uuid4()) + "x"]
    ):
        add(f"message-id-{i}", _j({"type": "message", "id": value, "text": "hello"}))
    for i, value in enumerate([None, 1, 1.5, True, [], {}, ["hello"], {"text": "hello"}]):
        add(f"message-text-{i}", _msg(text=value))
    for i, value in enumerate(["1", True, 1.0, -1, 2**31, None, [1]]):
        add(f"resume-after-{i}", _j({"type": "resume", "after_seq": value}))
    for i, value in enumerate([0, -5, "5", None]):
        add(f"history-before-{i}", _j({"type": "history", "before_seq": value}))
    for i, value in enumerate([0, -1, "10", 2.5, True]):
        add(f"history-limit-{i}", _j({"type": "history", "before_seq": 5, "limit": value}))
    for i, value in enumerate([0, 6, -1, "5", 5.0, True, None, 100]):
        add(f"rating-score-{i}", _j({"type": "rating", "score": value}))
    add("rating-comment-type", _j({"type": "rating", "score": 5, "comment": ["x"]}))
    for i, value in enumerate([99, 600, "200", True, 200.5]):
        add(f"page-status-{i}", _j({"type": "page", "status": value}))
    for i, value in enumerate(
        [1, ["/"], "javascript:alert(1)", "data:text/html,<b>x</b>", "/a b", "/a\n"]
    ):
        add(f"page-url-{i}", _j({"type": "page", "url": value}))
    for i, value in enumerate(["javascript:alert(1)", "vbscript:x", "data:,x", 5, "/x\n"]):
        add(f"link-url-{i}", _j({"type": "link", "message_seq": 1, "url": value}))
    add("message-page-type", _msg(text="hello", page="/home"))
    add("message-page-url", _msg(text="hello", page={"url": "javascript:alert(1)"}))
    add("message-page-extra", _msg(text="hello", page={"url": "/", "cookie": "x"}))
    # Missing and unknown fields.
    add("message-no-id", _j({"type": "message", "text": "hello"}))
    add("message-no-text", _j({"type": "message", "id": str(uuid.uuid4())}))
    add("message-extra", _msg(text="hello", user_id=1))
    add("message-session-id", _msg(text="hello", session_id=str(uuid.uuid4())))
    add("resume-missing", _j({"type": "resume"}))
    add("ping-extra", _j({"type": "ping", "x": 1}))
    add("close-extra", _j({"type": "close", "session_id": str(uuid.uuid4())}))
    # Unknown frame types.
    for i, kind in enumerate(
        ["hello", "MESSAGE", "message ", " ping", "Ping", "assistant.done", "session", "error",
         "ack", "admin", "", "__proto__", "constructor", "toString", "type", "message\x00"]
    ):  # fmt: skip
        add(f"unknown-type-{i}", _j({"type": kind}))
    # Oversize text and frames.
    add("text-too-long", _msg(text="a" * (MAX_MESSAGE_LENGTH + 1)), TOO_LONG)
    add("text-too-long-words", _msg(text="palavra " * 300), TOO_LONG)
    add("frame-too-large-ascii", _msg(text="a" * MAX_FRAME_BYTES), TOO_LARGE)
    add("frame-too-large-emoji", _msg(text="\U0001f600" * 4500), TOO_LARGE)
    add("frame-too-large-padding", '{"type":"ping"}' + " " * MAX_FRAME_BYTES, TOO_LARGE)
    add("frame-too-large-escapes", _msg(text="\\u0041" * 3000), TOO_LARGE)
    # Lone surrogates as JSON escapes (raw ones are below, as bytes).
    add("surrogate-text", '{"type":"message","id":"%s","text":"hi \\ud800"}' % uuid.uuid4())  # noqa: UP031
    add("surrogate-low", '{"type":"message","id":"%s","text":"\\udfff"}' % uuid.uuid4())  # noqa: UP031
    add("surrogate-type", '{"type":"ping\\ud800"}')
    add("surrogate-key", '{"type":"ping","\\ud800":1}')
    add("surrogate-id", '{"type":"message","id":"\\ud800","text":"x"}')
    add("surrogate-url", '{"type":"page","url":"/\\ud800"}')
    add("surrogate-title", '{"type":"page","title":"\\udbff"}')
    add("surrogate-comment", '{"type":"rating","score":5,"comment":"\\ud800"}')
    # Control characters, NUL and bidi overrides: in text they are removed (nothing left here),
    # in machine fields they are refused.
    for i, text in enumerate(
        ["\x00", "\x00\x00\x00", "\x01\x02\x03\x1b", "\u202e", "\u202e\u202d\u2066\u2069",
         "\x7f\x85\x9f", " \t\n\r\n ", "\x1b\x07\x08"]
    ):  # fmt: skip
        add(f"control-only-text-{i}", _msg(text=text))
    add("nul-in-type", _j({"type": "ping\x00"}))
    add("nul-in-url", _j({"type": "page", "url": "/a\x00b"}))
    add("bidi-in-url", _j({"type": "page", "url": "/\u202egpj.exe"}))
    add("bidi-in-id", _j({"type": "message", "id": "\u202e" + str(uuid.uuid4()), "text": "x"}))
    add("control-in-link", _j({"type": "link", "message_seq": 1, "url": "https://a.example/\x1b"}))
    # SQL and template injection, in every machine field (in free text they are just text).
    for i, s in enumerate(INJECTIONS):
        add(f"inject-type-{i}", _j({"type": s}))
        add(f"inject-id-{i}", _j({"type": "message", "id": s, "text": "hello"}))
        add(f"inject-seq-{i}", _j({"type": "resume", "after_seq": s}))
    for i, s in enumerate(INJECTIONS[:6]):
        add(f"inject-key-{i}", _j({"type": "ping", s: 1}))
        add(f"inject-url-{i}", _j({"type": "page", "url": s}))
    # Prototype-pollution shapes.
    add("proto-top", '{"__proto__":{"type":"ping"}}')
    add("proto-extra", '{"type":"ping","__proto__":{"isAdmin":true}}')
    add("proto-constructor", '{"type":"ping","constructor":{"prototype":{"isAdmin":true}}}')
    add("proto-page", _j({"type": "page", "url": "/", "__proto__": {"status": 200}}))
    add("proto-message", _msg(text="hi", __proto__={"admin": True}))
    add("proto-in-page", _msg(text="hi", page={"__proto__": {"url": "/"}}))
    # Duplicate keys: which one wins differs between parsers.
    add("dup-type", '{"type":"ping","type":"close"}')
    add("dup-text", '{"type":"message","id":"%s","text":"a","text":"b"}' % uuid.uuid4())  # noqa: UP031
    add("dup-id", f'{{"type":"message","id":"{uuid.uuid4()}","id":"{uuid.uuid4()}","text":"a"}}')
    add("dup-score", '{"type":"rating","score":5,"score":1}')
    add("dup-nested", '{"type":"page","url":"/","title":"a","title":"b"}')
    # Binary frames and bytes that are not UTF-8.
    out.append(Frame("binary-json", b'{"type":"ping"}', INVALID, "binary"))
    out.append(Frame("binary-empty", b"", INVALID, "binary"))
    out.append(Frame("binary-noise", bytes(range(256)), INVALID, "binary"))
    out.append(Frame("binary-message", _msg(text="hello").encode(), INVALID, "binary"))
    # Raw lone surrogates and invalid UTF-8 in a text frame: the WebSocket layer closes (1007).
    raw = '{"type":"message","id":"%s","text":"hi \ud800"}' % uuid.uuid4()  # noqa: UP031
    out.append(Frame("raw-surrogate", raw.encode("utf-8", "surrogatepass"), BAD_UTF8, "raw"))
    out.append(Frame("raw-latin1", '{"type":"pïng"}'.encode("latin-1"), BAD_UTF8, "raw"))
    out.append(Frame("raw-overlong", b'{"type":"\xc0\xaf"}', BAD_UTF8, "raw"))
    return out


def burst(n: int = 1000) -> list[str]:
    """``n`` invalid frames to send without waiting: 20 in a row close the socket (4400)."""
    return [_j({"type": "burst", "n": i}) for i in range(n)]
