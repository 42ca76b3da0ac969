"""One active chat session per owner, enforced by the database.

Before this, the lookup on connect kept it so (it took the most recently active one); racing
connects could still leave two active sessions of one owner, of which only the newest was ever
reached again. Those older ones are expired first (``closed_at`` = now), then two partial unique
indexes make the rule hold: the chat creates a session with its first message, and two tabs
creating one at once must end in the same session. Rows without an owner (no user, no visitor
key: made by hand or imported) are left out of the rule.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models
from django.db.models import Q
from django.utils import timezone


def expire_duplicates(apps: Any, schema_editor: Any) -> None:
    ChatSession = apps.get_model("sophie_chat", "ChatSession")
    seen: set[tuple[Any, str]] = set()
    stale: list[Any] = []
    rows = (
        ChatSession.objects.using(schema_editor.connection.alias)
        .filter(status="active")
        .order_by("-last_activity_at", "-created_at")
        .values_list("pk", "user_id", "visitor_key")
    )
    for pk, user_id, visitor_key in rows.iterator():
        owner = (user_id, "") if user_id is not None else (None, visitor_key)
        if owner == (None, ""):  # no owner (made by hand or imported): no rule to keep
            continue
        if owner in seen:
            stale.append(pk)
        else:
            seen.add(owner)
    for start in range(0, len(stale), 500):
        ChatSession.objects.using(schema_editor.connection.alias).filter(
            pk__in=stale[start : start + 500]
        ).update(status="expired", closed_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [("sophie_chat", "0002_knowledge_search")]

    operations = [
        migrations.RunPython(expire_duplicates, migrations.RunPython.noop, elidable=True),
        migrations.AddConstraint(
            model_name="chatsession",
            constraint=models.UniqueConstraint(
                condition=Q(status="active", user__isnull=False),
                fields=("user",),
                name="sophie_session_one_active_user",
            ),
        ),
        migrations.AddConstraint(
            model_name="chatsession",
            constraint=models.UniqueConstraint(
                condition=Q(status="active", user__isnull=True) & ~Q(visitor_key=""),
                fields=("visitor_key",),
                name="sophie_session_one_active_visitor",
            ),
        ),
    ]
