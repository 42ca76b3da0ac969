"""The USER / --visitor arguments shared by the privacy commands."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from sophie_chat.privacy import Subject, SubjectNotFound, find_user


def add_subject_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "user",
        nargs="?",
        help="The user: primary key, username or e-mail address.",
    )
    parser.add_argument(
        "--visitor",
        metavar="SESSION_KEY",
        default="",
        help="An anonymous visitor, by the key of their Django session, instead of a user.",
    )


def subject_from(options: dict[str, Any]) -> Subject:
    if bool(options["user"]) == bool(options["visitor"]):
        raise CommandError("Give a USER or --visitor SESSION_KEY (one of them).")
    if options["visitor"]:
        return Subject(visitor_key=options["visitor"])
    try:
        return Subject(user=find_user(options["user"]))
    except SubjectNotFound as exc:
        raise CommandError(str(exc)) from exc
