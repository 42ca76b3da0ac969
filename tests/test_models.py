"""The models' database rules: one active chat session per owner (and its migration)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from sophie_chat.models import ChatSession

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_owner_has_at_most_one_active_session(user_factory: Any) -> None:
    user = user_factory()
    ChatSession.objects.create(visitor_key="v" * 32)
    ChatSession.objects.create(user=user)
    for fields in ({"visitor_key": "v" * 32}, {"user": user}):
        with pytest.raises(IntegrityError), transaction.atomic():
            ChatSession.objects.create(**fields)
        # Ended sessions do not count.
        ChatSession.objects.create(status="closed", **fields)
        ChatSession.objects.create(status="expired", **fields)
    # A user's sessions never collide with a visitor's (their visitor key is empty), and rows
    # without an owner (made by hand, imported) are left out of the rule.
    ChatSession.objects.create(visitor_key="", user=user_factory())
    ChatSession.objects.create()
    ChatSession.objects.create()


def test_the_migration_expires_older_duplicate_active_sessions() -> None:
    """Before 0003 racing connects could leave two active sessions of one owner."""
    from django.db.migrations.executor import MigrationExecutor

    before = [("sophie_chat", "0002_knowledge_search")]
    after = [("sophie_chat", "0003_one_active_session_per_owner")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old_apps = executor.loader.project_state(before).apps
        Session = old_apps.get_model("sophie_chat", "ChatSession")
        now = timezone.now()
        newest = Session.objects.create(visitor_key="v" * 32, last_activity_at=now)
        older = Session.objects.create(
            visitor_key="v" * 32, last_activity_at=now - timedelta(hours=1)
        )
        other = Session.objects.create(visitor_key="w" * 32, last_activity_at=now)
        ownerless = [Session.objects.create(last_activity_at=now) for _ in range(2)]
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
    status = dict(ChatSession.objects.values_list("pk", "status"))
    assert status == {
        newest.pk: "active",
        older.pk: "expired",
        other.pk: "active",
        **{row.pk: "active" for row in ownerless},
    }
    assert ChatSession.objects.get(pk=older.pk).closed_at is not None
