"""Expire idle chat sessions and delete old ended ones; safe to run while people chat.

Run it every few minutes from cron or a scheduler::

    python manage.py sophie_chat_cleanup            # expire + delete
    python manage.py sophie_chat_cleanup --dry-run  # only count
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from sophie_chat.conf import get_config
from sophie_chat.conversation.store import session_ended_sync
from sophie_chat.models import ChatSession

ACTIVE = ChatSession.Status.ACTIVE
ENDED = (ChatSession.Status.CLOSED, ChatSession.Status.EXPIRED)


class Command(BaseCommand):
    help = (
        "Expire active chat sessions idle for longer than SESSION_TTL and delete closed or "
        "expired sessions older than RETENTION_DAYS (0 keeps them)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count, change nothing.")
        parser.add_argument(
            "--batch-size", type=int, default=500, help="Rows per statement (default 500)."
        )

    def handle(self, *args: Any, dry_run: bool = False, batch_size: int = 500, **opts: Any) -> None:
        config = get_config()
        now = timezone.now()
        idle_before = now - timedelta(seconds=int(config["SESSION_TTL"]))
        expired = self._expire(idle_before, now, batch_size, dry_run)
        deleted = 0
        retention = int(config["RETENTION_DAYS"])
        if retention > 0:
            deleted = self._delete(now - timedelta(days=retention), batch_size, dry_run)
        verb = "would be" if dry_run else "were"
        self.stdout.write(f"{expired} idle session(s) {verb} expired.")
        if retention > 0:
            self.stdout.write(
                f"{deleted} session(s) ended over {retention} day(s) ago {verb} deleted."
            )
        else:
            self.stdout.write("RETENTION_DAYS is 0: ended sessions are kept.")

    def _expire(self, idle_before: Any, now: Any, batch_size: int, dry_run: bool) -> int:
        idle = ChatSession.objects.filter(status=ACTIVE, last_activity_at__lt=idle_before)
        if dry_run:
            return idle.count()
        total, last_id = 0, None
        while True:
            page = idle.order_by("pk")
            if last_id is not None:
                page = page.filter(pk__gt=last_id)
            ids = list(page.values_list("pk", flat=True)[:batch_size])
            if not ids:
                return total
            last_id = ids[-1]
            # The idle condition is repeated in the UPDATE itself: a message stored since the
            # SELECT moved last_activity_at forward, and that session stays active.
            if ChatSession.objects.filter(
                pk__in=ids, status=ACTIVE, last_activity_at__lt=idle_before
            ).update(status=ChatSession.Status.EXPIRED, closed_at=now):
                # The analytics' end-of-session snapshot (resolution, intents) for this batch.
                ended = ChatSession.objects.filter(
                    pk__in=ids, status=ChatSession.Status.EXPIRED, closed_at=now
                ).values_list("pk", flat=True)
                for session_id in ended:
                    session_ended_sync(session_id)
                    total += 1

    def _delete(self, ended_before: Any, batch_size: int, dry_run: bool) -> int:
        old = ChatSession.objects.filter(status__in=ENDED, last_activity_at__lt=ended_before)
        if dry_run:
            return old.count()
        total = 0
        while True:
            ids = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not ids:
                return total
            with transaction.atomic():
                # Messages and analytics go with their session (on_delete=CASCADE).
                _, counts = ChatSession.objects.filter(pk__in=ids, status__in=ENDED).delete()
            deleted = counts.get(ChatSession._meta.label, 0)
            if not deleted:
                return total
            total += deleted
