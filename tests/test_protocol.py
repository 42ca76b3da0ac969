"""Protocol v1: the parser refuses every bad-input class with a stable code; docs match code."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.utils import translation

from sophie_chat import protocol
from sophie_chat.protocol import (
    ClientType,
    CloseCode,
    ErrorCode,
    MessageFrame,
    ProtocolError,
    ServerType,
    parse_client_frame,
)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "protocol.rst"
ID = str(uuid.uuid4())


def parse(frame: Any, **limits: Any) -> Any:
    raw = frame if isinstance(frame, (str, bytes)) else json.dumps(frame)
    limits.setdefault("max_message_length", 50)
    limits.setdefault("max_history_page_size", 100)
    return parse_client_frame(raw, **limits)


def code_of(frame: Any, **limits: Any) -> str:
    with pytest.raises(ProtocolError) as info:
        parse(frame, **limits)
    return info.value.code.value


def test_valid_message_is_typed_and_normalised() -> None:
    frame = parse(
        {
            "type": "message",
            "id": ID.upper(),
            "text": "  Olá\r\nmundo\x00\u202e!\t ",
            "page": {"url": "/a/", "title": "T\x07", "referrer": "https://x.test/", "status": 404},
        }
    )
    assert isinstance(frame, MessageFrame)
    assert frame.id == ID  # canonical lower-case form
    assert frame.text == "Olá\nmundo!"
    assert frame.page is not None
    assert frame.page.as_dict() == {
        "url": "/a/",
        "title": "T",
        "referrer": "https://x.test/",
        "status": 404,
    }


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "invalid"),
        (b"\xff\xfe", "invalid"),  # not UTF-8
        ("[]", "invalid"),
        ('"message"', "invalid"),
        ({"text": "no type"}, "invalid"),
        ({"type": "nope"}, "invalid"),
        ({"type": 3}, "invalid"),
        ({"type": "ping", "extra": 1}, "invalid"),  # unknown field
        ({"type": "message", "id": ID}, "invalid"),  # missing field
        ({"type": "message", "id": "x", "text": "oi"}, "invalid"),
        ({"type": "message", "id": ID + "0", "text": "oi"}, "invalid"),
        ({"type": "message", "id": 5, "text": "oi"}, "invalid"),
        ({"type": "message", "id": ID, "text": 5}, "invalid"),
        ({"type": "message", "id": ID, "text": "   \x01 "}, "invalid"),  # empty once cleaned
        ({"type": "message", "id": ID, "text": "a" * 51}, "too_long"),
        (f'{{"type":"message","id":"{ID}","text":"\\ud800"}}', "invalid"),  # lone surrogate
        (
            {"type": "message", "id": ID, "text": "oi", "page": {"url": "javascript:alert(1)"}},
            "invalid",
        ),
        ({"type": "message", "id": ID, "text": "oi", "page": {"url": "/", "x": 1}}, "invalid"),
        ({"type": "message", "id": ID, "text": "oi", "page": {"status": 99}}, "invalid"),
        ({"type": "message", "id": ID, "text": "oi", "page": ["/"]}, "invalid"),
        ({"type": "message", "id": ID, "text": "oi", "session_id": ID}, "invalid"),
        ({"type": "resume", "after_seq": -1}, "invalid"),
        ({"type": "resume", "after_seq": 1.0}, "invalid"),
        ({"type": "resume", "after_seq": True}, "invalid"),
        ({"type": "resume", "after_seq": "1"}, "invalid"),
        ({"type": "resume", "after_seq": 2**31}, "invalid"),
        ('{"type":"resume","after_seq":1%s}' % ("0" * 5000), "invalid"),  # huge number
        ('{"type":"resume","after_seq":NaN}', "invalid"),
        ('{"type":"resume","after_seq":Infinity}', "invalid"),
        ('{"type":"resume","after_seq":1e999}', "invalid"),
        ('{"type":"ping","type":"ping"}', "invalid"),  # duplicate key
        ("[" * 100000 + "]" * 100000, "invalid"),  # deep nesting
        ({"type": "resume", "after_seq": 1, "session_id": ID}, "invalid"),
        ({"type": "history", "before_seq": 0}, "invalid"),
        ({"type": "history", "before_seq": 5, "limit": 0}, "invalid"),
        ({"type": "rating", "score": 6}, "invalid"),
        ({"type": "rating", "score": 0}, "invalid"),
        ({"type": "rating", "score": 3, "comment": "c" * 2001}, "too_long"),
        ({"type": "rating", "score": 3, "session_id": ID}, "invalid"),
        ({"type": "close", "session_id": ID}, "invalid"),
        ({"type": "link", "message_seq": 1, "url": "javascript:x"}, "invalid"),
        ({"type": "link", "message_seq": 1, "url": "https://a b"}, "invalid"),
        ({"type": "page", "url": "/\u202e"}, "invalid"),
    ],
)
def test_bad_input_has_a_stable_code(raw: Any, code: str) -> None:
    assert code_of(raw) == code


def test_long_page_context_is_cut_not_refused() -> None:
    frame = parse(
        {
            "type": "message",
            "id": ID,
            "text": "oi",
            "page": {"url": "https://x.test/?" + "a" * 3000, "title": "t" * 400, "status": 200},
        },
        max_message_length=2000,
    )
    assert len(frame.page.url) == 2048
    assert frame.page.title == "t" * 300
    assert code_of({"type": "link", "message_seq": 1, "url": "/" + "a" * 2048}) == "invalid"


def test_message_errors_carry_the_message_id() -> None:
    with pytest.raises(ProtocolError) as info:
        parse({"type": "message", "id": ID, "text": "a" * 51})
    assert info.value.id == ID


def test_history_limit_is_capped_not_refused() -> None:
    assert parse({"type": "history", "before_seq": 9, "limit": 10**6}).limit == 100
    assert parse({"type": "history", "before_seq": 9}).limit == 100


def test_every_client_type_parses() -> None:
    samples = {
        "message": {"id": ID, "text": "oi"},
        "resume": {"after_seq": 0},
        "history": {"before_seq": 3, "limit": 2},
        "page": {"url": "/x", "title": "X", "referrer": "", "status": None},
        "rating": {"score": 5, "comment": "ótimo"},
        "close": {},
        "stop": {},
        "link": {"message_seq": 2, "url": "mailto:a@b.c"},
        "ping": {},
    }
    assert set(samples) == {t.value for t in ClientType}
    for kind, fields in samples.items():
        assert parse({"type": kind, **fields}).type.value == kind


def test_error_messages_are_translated() -> None:
    with translation.override("en"):
        english = protocol.error_frame(ErrorCode.RATE_LIMITED, retry_after=3, id=ID)
    with translation.override("pt-br"):
        portuguese = protocol.error_frame(ErrorCode.RATE_LIMITED)
    assert english["message"] == "You are sending messages too fast. Please wait a moment."
    assert english["retry_after"] == 3
    assert english["id"] == ID
    assert portuguese["message"] != english["message"]
    for code in ErrorCode:
        with translation.override("pt-br"):
            pt = protocol.error_frame(code)["message"]
        with translation.override("en"):
            en = protocol.error_frame(code)["message"]
        assert pt != en, code


# --- docs/protocol.rst and protocol.py say the same -------------------------------------------


def _section(text: str, title: str) -> str:
    start = text.index(f"\n{title}\n{'-' * len(title)}\n")
    end = re.search(r"\n[^\n]+\n-{3,}\n", text[start + len(title) + 4 :])
    return text[start : start + len(title) + 4 + end.start()] if end else text[start:]


def _headings(section: str) -> set[str]:
    return set(re.findall(r"^``([a-z.]+)``\n~+$", section, flags=re.MULTILINE))


def _table_codes(section: str) -> set[str]:
    return set(re.findall(r"^   \* - ``([a-z_0-9]+)``$", section, flags=re.MULTILINE))


def test_docs_list_every_frame_and_code() -> None:
    text = DOCS.read_text()
    assert _headings(_section(text, "Client frames")) == {t.value for t in ClientType}
    assert _headings(_section(text, "Server frames")) == {t.value for t in ServerType}
    assert _table_codes(_section(text, "Error codes")) == {c.value for c in ErrorCode}
    assert _table_codes(_section(text, "Close codes")) == {str(c.value) for c in CloseCode}


def test_docs_examples_are_valid_frames() -> None:
    text = DOCS.read_text()
    pattern = r"\.\. code-block:: json\n\n((?:   .*\n|\n)+)"
    client = [json.loads(b) for b in re.findall(pattern, _section(text, "Client frames"))]
    server = [json.loads(b) for b in re.findall(pattern, _section(text, "Server frames"))]
    for example in client:  # every client example passes the parser
        parse(json.dumps(example), max_message_length=2000)
    assert {f["type"] for f in client} == {t.value for t in ClientType}
    assert {f["type"] for f in server} == {t.value for t in ServerType}


def test_docs_session_and_closed_examples_are_what_the_server_sends() -> None:
    text = DOCS.read_text()
    pattern = r"\.\. code-block:: json\n\n((?:   .*\n|\n)+)"
    server = [json.loads(b) for b in re.findall(pattern, _section(text, "Server frames"))]
    sessions = [f for f in server if f["type"] == "session"]
    # Both kinds are documented: before the first message (null) and with a session.
    assert sorted(f["session_id"] is None for f in sessions) == [False, True]
    for example in sessions:
        assert (
            protocol.session_frame(**{k: v for k, v in example.items() if k != "type"}) == example
        )
    for example in (f for f in server if f["type"] == "closed"):
        assert protocol.closed_frame(example["session_id"]) == example
    assert "``session`` frame of that session" in _section(text, "Client frames")
