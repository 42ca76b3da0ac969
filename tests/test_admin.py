"""The admin of the four models: every list and change page renders for staff."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from sophie_chat.models import ChatAnalytics, ChatMessage, ChatSession, KnowledgeBaseEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(user_factory: Any) -> Client:
    client = Client()
    client.force_login(user_factory(is_staff=True, is_superuser=True))
    return client


def test_every_model_has_a_working_admin(admin_client_: Client, user_factory: Any) -> None:
    session = ChatSession.objects.create(user=user_factory())
    message = ChatMessage.objects.create(
        session=session,
        seq=1,
        sender="assistant",
        content="x" * 200,
        metadata={"status": "complete"},
    )
    analytics = ChatAnalytics.objects.create(session=session, user_messages=1)
    entry = KnowledgeBaseEntry.objects.create(slug="pagamento", title="Pagamento", content="Pix")
    for obj in (session, message, analytics, entry):
        opts = obj._meta
        changelist = admin_client_.get(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        )
        assert changelist.status_code == 200, opts.model_name
        change = admin_client_.get(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        )
        assert change.status_code == 200, opts.model_name
    listing = admin_client_.get(
        reverse("admin:sophie_chat_chatmessage_changelist")
    ).content.decode()
    assert "x" * 79 + "\u2026" in listing
    assert "complete" in listing


def test_messages_and_analytics_are_read_only(admin_client_: Client) -> None:
    assert admin_client_.get(reverse("admin:sophie_chat_chatmessage_add")).status_code == 403
    assert admin_client_.get(reverse("admin:sophie_chat_chatanalytics_add")).status_code == 403
