"""Database models: chat sessions, their messages, the knowledge base and per-session analytics."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UserType(models.TextChoices):
    CLIENT = "client", _("Client")
    PROVIDER = "provider", _("Service provider")
    ANONYMOUS = "anonymous", _("Anonymous visitor")
    STAFF = "staff", _("Staff")


class ChatSession(models.Model):
    """One conversation between a visitor and the assistant.

    The owner is either a user or, for anonymous visitors, the key of their Django session.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        CLOSED = "closed", _("Closed")
        EXPIRED = "expired", _("Expired")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="sophie_chat_sessions",
        verbose_name=_("user"),
    )
    visitor_key = models.CharField(_("visitor key"), max_length=64, blank=True, default="")
    user_type = models.CharField(
        _("user type"), max_length=16, choices=UserType.choices, default=UserType.ANONYMOUS
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    language = models.CharField(_("language"), max_length=16, default="pt-br")
    context = models.JSONField(_("context"), default=dict, blank=True)
    rating = models.PositiveSmallIntegerField(_("rating"), null=True, blank=True)
    rating_comment = models.TextField(_("rating comment"), blank=True, default="")
    rated_at = models.DateTimeField(_("rated at"), null=True, blank=True)
    escalated = models.BooleanField(_("escalated"), default=False)
    escalation_reason = models.CharField(
        _("escalation reason"), max_length=64, blank=True, default=""
    )
    last_seq = models.PositiveIntegerField(_("last sequence number"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    last_activity_at = models.DateTimeField(_("last activity"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("chat session")
        verbose_name_plural = _("chat sessions")
        ordering = ["-last_activity_at"]
        indexes = [
            models.Index(
                fields=["user", "status", "-last_activity_at"], name="sophie_session_user_active"
            ),
            models.Index(
                fields=["visitor_key", "status", "-last_activity_at"],
                name="sophie_session_visitor",
            ),
            models.Index(fields=["status", "last_activity_at"], name="sophie_session_cleanup"),
            models.Index(fields=["created_at"], name="sophie_session_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                name="sophie_session_rating_1_5",
            ),
            # One active session per owner. A session is created by its first message, so two
            # tabs may race to create one: the database decides, and the loser's message goes
            # into the winner's session (conversation/creation.py). Rows without an owner (made
            # by hand or imported) are left out.
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(status="active", user__isnull=False),
                name="sophie_session_one_active_user",
            ),
            models.UniqueConstraint(
                fields=["visitor_key"],
                condition=Q(status="active", user__isnull=True) & ~Q(visitor_key=""),
                name="sophie_session_one_active_visitor",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.get_status_display()})"


class ChatMessage(models.Model):
    """A stored message. ``seq`` orders the messages of one session, starting at 1."""

    class Sender(models.TextChoices):
        USER = "user", _("User")
        ASSISTANT = "assistant", _("Assistant")
        SYSTEM = "system", _("System")

    session = models.ForeignKey(
        ChatSession, on_delete=models.CASCADE, related_name="messages", verbose_name=_("session")
    )
    seq = models.PositiveIntegerField(_("sequence number"))
    sender = models.CharField(_("sender"), max_length=16, choices=Sender.choices)
    client_id = models.UUIDField(_("client message id"), null=True, blank=True)
    content = models.TextField(_("content"))
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("chat message")
        verbose_name_plural = _("chat messages")
        ordering = ["session", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["session", "seq"], name="sophie_message_seq"),
            models.UniqueConstraint(
                fields=["session", "client_id"],
                condition=Q(client_id__isnull=False),
                name="sophie_message_client_id",
            ),
        ]
        indexes = [models.Index(fields=["created_at"], name="sophie_message_created")]

    def __str__(self) -> str:
        return f"{self.session_id}#{self.seq} {self.sender}"


class KnowledgeBaseEntry(models.Model):
    """A piece of the site's knowledge that grounds the assistant's answers."""

    class Category(models.TextChoices):
        FAQ = "faq", _("FAQ")
        SERVICE = "service", _("Service")
        NAVIGATION = "navigation", _("Navigation guide")
        POLICY = "policy", _("Policy")
        PROVIDER = "provider", _("For providers")
        ACCOUNT = "account", _("Account")
        PAYMENT = "payment", _("Payments")
        SAFETY = "safety", _("Safety")
        GENERAL = "general", _("General")

    slug = models.SlugField(_("slug"), max_length=120)
    language = models.CharField(_("language"), max_length=16, default="pt-br")
    category = models.CharField(
        _("category"), max_length=32, choices=Category.choices, default=Category.GENERAL
    )
    title = models.CharField(_("title"), max_length=200)
    content = models.TextField(_("content"))
    keywords = models.CharField(_("keywords"), max_length=500, blank=True, default="")
    audience = models.CharField(
        _("audience"),
        max_length=16,
        blank=True,
        default="",
        help_text=_("Empty for everyone, or client / provider."),
    )
    url = models.CharField(_("link"), max_length=500, blank=True, default="")
    url_pattern = models.CharField(
        _("page pattern"),
        max_length=200,
        blank=True,
        default="",
        help_text=_("For navigation guides: a URL regex or a view name the guide is about."),
    )
    content_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.CASCADE, verbose_name=_("linked type")
    )
    object_id = models.CharField(_("linked object id"), max_length=64, blank=True, default="")
    linked_object = GenericForeignKey("content_type", "object_id")
    search_text = models.TextField(
        _("normalised search text"), blank=True, default="", editable=False
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("knowledge base entry")
        verbose_name_plural = _("knowledge base entries")
        ordering = ["category", "title"]
        constraints = [
            models.UniqueConstraint(fields=["slug", "language"], name="sophie_kb_slug_language"),
        ]
        indexes = [
            models.Index(fields=["is_active", "language", "category"], name="sophie_kb_filter"),
            models.Index(fields=["content_type", "object_id"], name="sophie_kb_linked"),
        ]

    def __str__(self) -> str:
        return self.title


class ChatAnalytics(models.Model):
    """Counters and timings of one session, updated at the end of each turn."""

    session = models.OneToOneField(
        ChatSession, on_delete=models.CASCADE, related_name="analytics", verbose_name=_("session")
    )
    user_messages = models.PositiveIntegerField(_("user messages"), default=0)
    assistant_messages = models.PositiveIntegerField(_("assistant messages"), default=0)
    ai_answers = models.PositiveIntegerField(_("AI answers"), default=0)
    cache_answers = models.PositiveIntegerField(_("cached answers"), default=0)
    fallback_answers = models.PositiveIntegerField(_("fallback answers"), default=0)
    ai_errors = models.PositiveIntegerField(_("AI errors"), default=0)
    rate_limited = models.PositiveIntegerField(_("rate-limited messages"), default=0)
    tokens_in = models.PositiveIntegerField(_("tokens in"), default=0)
    tokens_out = models.PositiveIntegerField(_("tokens out"), default=0)
    total_first_token_ms = models.PositiveBigIntegerField(_("sum of first-token times"), default=0)
    total_response_ms = models.PositiveBigIntegerField(_("sum of response times"), default=0)
    max_response_ms = models.PositiveIntegerField(_("slowest response"), default=0)
    intents = models.JSONField(_("intent counts"), default=dict, blank=True)
    links_clicked = models.PositiveIntegerField(_("links clicked"), default=0)
    resolved = models.BooleanField(_("resolved"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("chat analytics")
        verbose_name_plural = _("chat analytics")

    def __str__(self) -> str:
        return f"analytics {self.session_id}"
