"""``manage.py sophie_chat_export_user USER``: a person's chat data as JSON (LGPD/GDPR access)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sophie_chat.management.commands._subject import add_subject_arguments, subject_from
from sophie_chat.privacy import export_json


class Command(BaseCommand):
    help = "Export every chat session, message and rating of a user or anonymous visitor as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        add_subject_arguments(parser)
        parser.add_argument(
            "-o", "--output", type=Path, default=None, help="Write to this file instead of stdout."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        text = export_json(subject_from(options))
        if options["output"] is None:
            self.stdout.write(text)
        else:
            options["output"].write_text(text + "\n", encoding="utf-8")
            self.stderr.write(f"Wrote {options['output']}.")
