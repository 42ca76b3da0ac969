"""Admin of the chat sessions, with the data-protection actions: export or erase an owner's data."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from sophie_chat import privacy
from sophie_chat.knowledge.admin import KnowledgeBaseEntryAdmin
from sophie_chat.models import ChatAnalytics, ChatMessage, ChatSession, KnowledgeBaseEntry


class ChatMessageInline(admin.TabularInline):
    model = ChatMessage
    fields = ("seq", "sender", "content", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ("seq",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ChatSession)
class ChatSessionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "user_type",
        "status",
        "language",
        "rating",
        "escalated",
        "created_at",
        "last_activity_at",
    )
    list_filter = ("status", "user_type", "escalated", "rating", "language", "created_at")
    search_fields = ("=id", "user__username", "user__email", "=visitor_key")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in ChatSession._meta.fields]
    list_select_related = ("user",)
    inlines = [ChatMessageInline]
    actions = ["export_owner_data", "erase_owner_data"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Export all chat data of the owners (JSON, LGPD/GDPR)"))
    def export_owner_data(
        self, request: HttpRequest, queryset: QuerySet[ChatSession]
    ) -> HttpResponse:
        subjects = privacy.subjects_of(queryset)
        exports = [privacy.export_data(subject) for subject in subjects]
        # Sessions without an owner key (none in practice) are still exported as selected.
        orphans = queryset.filter(user__isnull=True, visitor_key="")
        if orphans.exists():
            exports.append(privacy.export_data(None, orphans))
        body = json.dumps(
            exports[0] if len(exports) == 1 else exports, ensure_ascii=False, indent=2
        )
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="sophie-chat-data-{stamp}.json"'
        return response

    @admin.action(
        description=_("Erase all chat data of the owners (LGPD/GDPR)"),
        permissions=["delete"],
    )
    def erase_owner_data(
        self, request: HttpRequest, queryset: QuerySet[ChatSession]
    ) -> HttpResponse | None:
        everything = privacy.owners_sessions(queryset)
        if request.POST.get("confirm") == "yes":
            counts = privacy.erase_data(None, everything)
            self.message_user(
                request,
                ngettext(
                    "Erased %(sessions)d chat session and %(messages)d message(s).",
                    "Erased %(sessions)d chat sessions and %(messages)d message(s).",
                    counts["sessions"],
                )
                % counts,
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Erase chat data"),
            "subjects": privacy.subjects_of(queryset),
            "session_count": everything.count(),
            "message_count": ChatMessage.objects.filter(
                session__in=everything.values("pk")
            ).count(),
            "queryset": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "sophie_chat/admin/erase_confirmation.html", context)


@admin.register(ChatMessage)
class ChatMessageAdmin(admin.ModelAdmin):
    """Read-only: messages are the record of what was said; erase them with their session."""

    list_display = ("session", "seq", "sender", "short_content", "status", "created_at")
    list_filter = ("sender", "created_at")
    search_fields = ("=session__id", "=client_id")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in ChatMessage._meta.fields]
    list_select_related = ("session",)
    ordering = ("-created_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("content"))
    def short_content(self, obj: ChatMessage) -> str:
        return obj.content if len(obj.content) <= 80 else obj.content[:79] + "\u2026"

    @admin.display(description=_("status"))
    def status(self, obj: ChatMessage) -> str:
        return str((obj.metadata or {}).get("status", ""))


@admin.register(ChatAnalytics)
class ChatAnalyticsAdmin(admin.ModelAdmin):
    list_display = (
        "session",
        "user_messages",
        "ai_answers",
        "cache_answers",
        "fallback_answers",
        "ai_errors",
        "rate_limited",
        "resolved",
        "updated_at",
    )
    list_filter = ("resolved", "updated_at")
    search_fields = ("=session__id",)
    readonly_fields = [f.name for f in ChatAnalytics._meta.fields]
    list_select_related = ("session",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# The knowledge base admin lives with the knowledge layer (it has a "test a question" page).
admin.site.register(KnowledgeBaseEntry, KnowledgeBaseEntryAdmin)
