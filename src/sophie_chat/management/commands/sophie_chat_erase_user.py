"""``manage.py sophie_chat_erase_user USER``: delete a person's chat data (LGPD/GDPR erasure)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sophie_chat.management.commands._subject import add_subject_arguments, subject_from
from sophie_chat.models import ChatMessage
from sophie_chat.privacy import erase_data, sessions_of


class Command(BaseCommand):
    help = (
        "Delete every chat session of a user or anonymous visitor, with its messages, rating and "
        "counters. The user account itself is kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_subject_arguments(parser)
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args: Any, **options: Any) -> None:
        subject = subject_from(options)
        sessions = sessions_of(subject)
        count = sessions.count()
        if not count:
            self.stdout.write("No chat data to erase.")
            return
        if not options["yes"]:
            messages = ChatMessage.objects.filter(session__in=sessions.values("pk")).count()
            answer = input(
                f"Delete {count} chat session(s) and {messages} message(s)? This cannot be "
                "undone. Type 'yes' to continue: "
            )
            if answer.strip().lower() != "yes":
                raise CommandError("Nothing deleted.")
        counts = erase_data(subject)
        self.stdout.write(
            f"Deleted {counts['sessions']} chat session(s) and {counts['messages']} message(s)."
        )
