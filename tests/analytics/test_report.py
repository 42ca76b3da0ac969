from __future__ import annotations

import datetime as dt
import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from sophie_chat.analytics import report
from sophie_chat.analytics.demo import build_demo_chats
from tests.conftest import recipient

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo() -> dict[str, int]:
    return build_demo_chats(sessions=60, messages_per_session=6, days=13)


def test_report_compares_two_weeks(demo: dict[str, int]) -> None:
    today = timezone.localdate()
    data = report.weekly(today)
    assert data["period"] == {
        "start": (today - dt.timedelta(days=6)).isoformat(),
        "end": today.isoformat(),
    }
    cur, prev = data["current"], data["previous"]
    assert cur["sessions"] + prev["sessions"] == 60
    assert cur["top_intents"][0]["count"] >= cur["top_intents"][-1]["count"]
    assert set(cur["satisfaction"]) == {"1", "2", "3", "4", "5"}


def test_text_report_is_readable(demo: dict[str, int]) -> None:
    text = report.render(report.weekly(timezone.localdate()), "text")
    for heading in ("SUMMARY", "TOP TOPICS", "COMMON ISSUES", "SATISFACTION"):
        assert heading in text
    assert "Resolution rate" in text
    assert "Response time p95" in text
    assert max(len(line) for line in text.splitlines()) < 120


def test_markdown_and_json(demo: dict[str, int]) -> None:
    data = report.weekly(timezone.localdate())
    markdown = report.render(data, "markdown")
    assert markdown.startswith("# Sophie chat: weekly report")
    assert "| Resolution rate |" in markdown
    assert (
        json.loads(report.render(data, "json"))["current"]["sessions"]
        == data["current"]["sessions"]
    )


def test_change_words() -> None:
    assert report._change(110, 100) == "(+10%, better)"
    assert report._change(110, 100, lower_is_better=True) == "(+10%, worse)"
    assert report._change(110, 100, neutral=True) == "(+10%)"
    assert report._change(5, 0) == "(new)"
    assert report._change(None, 3) == ""
    assert report._points(0.5, 0.4) == "(+10.0 pp, better)"


def test_command_prints(demo: dict[str, int]) -> None:
    out = StringIO()
    week_ending = timezone.localdate().isoformat()
    call_command("sophie_chat_weekly_report", "--week-ending", week_ending, stdout=out)
    assert f"to {week_ending}" in out.getvalue()
    out = StringIO()
    call_command(
        "sophie_chat_weekly_report", "--format", "json", "--user-type", "client", stdout=out
    )
    assert json.loads(out.getvalue())["user_type"] == "client"


def test_command_emails_managers(
    demo: dict[str, int], settings: Any, mailoutbox: list[Any]
) -> None:
    settings.MANAGERS = [recipient("Gestão", "gestao@example.com")]
    call_command("sophie_chat_weekly_report", "--email", stderr=StringIO())
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["gestao@example.com"]
    assert "weekly report" in mailoutbox[0].subject
    assert "TOP TOPICS" in mailoutbox[0].body


def test_command_errors(settings: Any) -> None:
    settings.MANAGERS = []
    with pytest.raises(CommandError, match="MANAGERS"):
        call_command("sophie_chat_weekly_report", "--email")
    with pytest.raises(CommandError, match="not a date"):
        call_command("sophie_chat_weekly_report", "--week-ending", "yesterday")


def test_demo_option_saves_nothing() -> None:
    from sophie_chat.models import ChatSession

    out = StringIO()
    call_command("sophie_chat_weekly_report", "--demo", stdout=out)
    assert "TOP TOPICS" in out.getvalue()
    assert "hire_service" in out.getvalue()
    assert ChatSession.objects.count() == 0
