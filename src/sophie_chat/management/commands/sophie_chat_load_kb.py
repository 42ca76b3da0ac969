"""``manage.py sophie_chat_load_kb PATH [PATH ...]``: load knowledge base entries from files."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sophie_chat.knowledge.loader import LoadError, load, reindex


class Command(BaseCommand):
    help = (
        "Create or update knowledge base entries from YAML or JSON files (or directories of "
        "them), matched by slug and language. All or nothing: nothing is written when a file "
        "has an error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", help="YAML/JSON files or directories.")
        parser.add_argument(
            "--deactivate-missing",
            action="store_true",
            help="Deactivate active entries that none of the files mention.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would change; write nothing."
        )
        parser.add_argument(
            "--reindex",
            action="store_true",
            help="Recompute the search text of every entry (after bulk imports).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        paths: list[str] = options["paths"]
        if not paths and not options["reindex"]:
            raise CommandError("Give at least one file or directory (or --reindex).")
        if paths:
            try:
                report = load(
                    paths,
                    deactivate_missing=options["deactivate_missing"],
                    dry_run=options["dry_run"],
                )
            except LoadError as exc:
                for error in exc.errors:
                    self.stderr.write(error)
                raise CommandError(
                    f"{len(exc.errors)} error(s) found; nothing was written."
                ) from None
            verbosity = options["verbosity"]
            for label, names in (("created", report.created), ("updated", report.updated)):
                for name in names if verbosity >= 2 else []:
                    self.stdout.write(f"  {label}: {name}")
            for name in report.deactivated if verbosity >= 2 else []:
                self.stdout.write(f"  deactivated: {name}")
            summary = (
                f"{len(report.created)} created, {len(report.updated)} updated, "
                f"{len(report.unchanged)} unchanged, {len(report.deactivated)} deactivated"
            )
            if report.dry_run:
                summary += " (dry run: nothing written)"
            self.stdout.write(self.style.SUCCESS(summary))
        if options["reindex"] and not options["dry_run"]:
            count = reindex()
            self.stdout.write(self.style.SUCCESS(f"{count} entries reindexed"))
