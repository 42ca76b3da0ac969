"""``manage.py sophie_chat_weekly_report``: print or e-mail the chat's weekly report."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.mail import mail_managers
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from sophie_chat.analytics import report
from sophie_chat.analytics.demo import build_demo_chats
from sophie_chat.models import UserType


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--week-ending: {value!r} is not a date like 2026-11-22.") from exc


class Command(BaseCommand):
    help = (
        "Report the last seven days of chats: top topics, resolution rate, common issues, "
        "satisfaction and response times compared with the week before."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=report.FORMATS, default="text")
        parser.add_argument(
            "--week-ending",
            type=_date,
            default=None,
            help="Last day of the week reported (YYYY-MM-DD); default: yesterday.",
        )
        parser.add_argument(
            "--user-type",
            choices=[c for c, _ in UserType.choices],
            default="",
            help="Only these users.",
        )
        parser.add_argument(
            "--email", action="store_true", help="E-mail the report to settings.MANAGERS."
        )
        parser.add_argument(
            "--demo",
            action="store_true",
            help="Report on generated demo chats instead, in a transaction that is rolled back "
            "(nothing is saved).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        week_ending = options["week_ending"] or timezone.localdate() - dt.timedelta(days=1)
        if options["demo"]:
            with transaction.atomic():
                # Two weeks of chats ending now, reported, then thrown away.
                build_demo_chats(sessions=400, messages_per_session=10, days=14)
                data = report.weekly(week_ending, options["user_type"])
                transaction.set_rollback(True)
        else:
            data = report.weekly(week_ending, options["user_type"])
        text = report.render(data, options["format"])
        if options["email"]:
            if not settings.MANAGERS:
                raise CommandError("--email: settings.MANAGERS is empty.")
            period = data["period"]
            mail_managers(f"Chat weekly report, {period['start']} to {period['end']}", text)
            self.stderr.write(f"Sent to {len(settings.MANAGERS)} manager(s).")
        else:
            self.stdout.write(text, ending="")
