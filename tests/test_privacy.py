from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from sophie_chat.analytics import recorder
from sophie_chat.models import ChatAnalytics, ChatMessage, ChatSession
from sophie_chat.privacy import Subject, erase_data, export_data, find_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(
    user_factory: Callable[..., Any], chat_session_factory: Callable[..., Any]
) -> dict[str, Any]:
    ana = user_factory(username="ana", email="ana@example.com")
    bia = user_factory(username="bia")
    ana_chat = chat_session_factory(user=ana, user_type="client", rating=5, status="closed")
    ChatMessage.objects.create(session=ana_chat, seq=1, sender="user", content="Meu CPF é 123")
    ChatMessage.objects.create(
        session=ana_chat,
        seq=2,
        sender="assistant",
        content="Certo",
        metadata={"source": "ai", "html": "<p>Certo</p>"},
    )
    recorder.record_turn(ana_chat.pk, reply_meta={"source": "ai"}, user_intent="other")
    chat_session_factory(user=ana)
    bia_chat = chat_session_factory(user=bia)
    ChatMessage.objects.create(session=bia_chat, seq=1, sender="user", content="oi")
    visitor_chat = chat_session_factory(visitor_key="k" * 32)
    ChatMessage.objects.create(session=visitor_chat, seq=1, sender="user", content="olá")
    return {"ana": ana, "bia": bia, "ana_chat": ana_chat, "visitor_chat": visitor_chat}


def test_export_has_sessions_messages_and_ratings(people: dict[str, Any]) -> None:
    data = export_data(Subject(user=people["ana"]))
    assert data["subject"] == {"user_id": people["ana"].pk, "username": "ana"}
    assert len(data["sessions"]) == 2
    first = next(s for s in data["sessions"] if s["id"] == str(people["ana_chat"].pk))
    assert first["rating"] == 5
    assert [m["text"] for m in first["messages"]] == ["Meu CPF é 123", "Certo"]
    assert first["messages"][1]["metadata"] == {"source": "ai"}
    assert first["counters"]["user_messages"] == 1
    json.dumps(data)  # serialisable as it is


def test_export_of_an_anonymous_visitor(people: dict[str, Any]) -> None:
    data = export_data(Subject(visitor_key="k" * 32))
    assert [s["id"] for s in data["sessions"]] == [str(people["visitor_chat"].pk)]
    assert data["sessions"][0]["messages"][0]["text"] == "olá"
    # The visitor key is a session key: the export names the visitor without it.
    assert "k" * 32 not in json.dumps(data)
    assert data["subject"] == {"visitor": "kkkk…"}


def test_erase_deletes_only_that_person(people: dict[str, Any]) -> None:
    counts = erase_data(Subject(user=people["ana"]))
    assert counts == {"sessions": 2, "messages": 2}
    assert not ChatSession.objects.filter(user=people["ana"]).exists()
    assert not ChatAnalytics.objects.filter(session_id=people["ana_chat"].pk).exists()
    assert ChatSession.objects.filter(user=people["bia"]).count() == 1
    assert ChatSession.objects.filter(visitor_key="k" * 32).count() == 1
    assert type(people["ana"]).objects.filter(pk=people["ana"].pk).exists()


def test_subject_needs_exactly_one_identity(people: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="either"):
        Subject()
    with pytest.raises(ValueError, match="either"):
        Subject(user=people["ana"], visitor_key="x")


def test_find_user_by_id_username_or_email(people: dict[str, Any]) -> None:
    ana = people["ana"]
    assert find_user(str(ana.pk)) == ana
    assert find_user("ana") == ana
    assert find_user("ANA@example.com") == ana


def test_export_command(people: dict[str, Any], tmp_path: Path) -> None:
    out = StringIO()
    call_command("sophie_chat_export_user", "ana", stdout=out)
    assert len(json.loads(out.getvalue())["sessions"]) == 2
    target = tmp_path / "ana.json"
    call_command(
        "sophie_chat_export_user", "--visitor", "k" * 32, "-o", str(target), stderr=StringIO()
    )
    assert len(json.loads(target.read_text("utf-8"))["sessions"]) == 1


def test_commands_refuse_unknown_or_ambiguous_subjects(people: dict[str, Any]) -> None:
    with pytest.raises(CommandError, match="No user"):
        call_command("sophie_chat_export_user", "nobody")
    with pytest.raises(CommandError, match="one of them"):
        call_command("sophie_chat_erase_user", "ana", "--visitor", "k")
    with pytest.raises(CommandError, match="one of them"):
        call_command("sophie_chat_erase_user")


def test_erase_command_asks_first(people: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="Nothing deleted"):
        call_command("sophie_chat_erase_user", "bia")
    assert ChatSession.objects.filter(user=people["bia"]).count() == 1
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    out = StringIO()
    call_command("sophie_chat_erase_user", "bia", stdout=out)
    assert "Deleted 1 chat session(s) and 1 message(s)." in out.getvalue()


def test_erase_command_with_yes(people: dict[str, Any]) -> None:
    out = StringIO()
    call_command("sophie_chat_erase_user", "--visitor", "k" * 32, "--yes", stdout=out)
    assert "Deleted 1 chat session(s)" in out.getvalue()
    out = StringIO()
    call_command("sophie_chat_erase_user", "--visitor", "k" * 32, "--yes", stdout=out)
    assert "No chat data" in out.getvalue()


def test_deleting_a_user_deletes_their_chats(people: dict[str, Any]) -> None:
    people["ana"].delete()
    assert not ChatSession.objects.filter(pk=people["ana_chat"].pk).exists()


def test_admin_export_action(people: dict[str, Any], admin_client: Any) -> None:
    url = "/admin/sophie_chat/chatsession/"
    response = admin_client.post(
        url, {"action": "export_owner_data", "_selected_action": [str(people["ana_chat"].pk)]}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    data = json.loads(response.content)
    # The owner's other session comes along: an access request covers all their data.
    assert data["subject"]["username"] == "ana"
    assert len(data["sessions"]) == 2


def test_admin_erase_action_confirms_first(people: dict[str, Any], admin_client: Any) -> None:
    url = "/admin/sophie_chat/chatsession/"
    selected = [str(people["ana_chat"].pk), str(people["visitor_chat"].pk)]
    response = admin_client.post(
        url,
        {"action": "erase_owner_data", "_selected_action": selected},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    assert "3 chat session(s) and 3 message(s)" in response.content.decode()
    assert ChatSession.objects.count() == 4
    response = admin_client.post(
        url, {"action": "erase_owner_data", "_selected_action": selected, "confirm": "yes"}
    )
    assert response.status_code == 302
    assert list(ChatSession.objects.values_list("user__username", flat=True)) == ["bia"]


def test_admin_is_for_staff_only(people: dict[str, Any], client: Any) -> None:
    client.force_login(people["bia"])
    assert client.get("/admin/sophie_chat/chatsession/").status_code == 302
