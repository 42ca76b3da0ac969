"""Admin of the knowledge base, with a "test a question" page that shows what search returns.

``sophie_chat.admin`` registers :class:`KnowledgeBaseEntryAdmin` on the default admin site;
a project with its own admin site registers it there.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from sophie_chat.knowledge import search
from sophie_chat.knowledge.search import KnowledgeBase
from sophie_chat.models import KnowledgeBaseEntry


class TestQuestionForm(forms.Form):
    q = forms.CharField(label=_("Question"), max_length=500)
    language = forms.ChoiceField(
        label=_("Language"), choices=[("pt-br", "Português (Brasil)"), ("en", "English")]
    )
    audience = forms.ChoiceField(
        label=_("Asked by"),
        required=False,
        choices=[
            ("", _("Anyone (no audience filter)")),
            ("client", _("Client")),
            ("provider", _("Provider")),
        ],
    )
    category = forms.ChoiceField(
        label=_("Category"),
        required=False,
        choices=[("", _("All categories")), *KnowledgeBaseEntry.Category.choices],
    )


class KnowledgeBaseEntryAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "language", "category", "audience", "is_active", "updated_at")
    list_display_links = ("title",)
    list_filter = ("category", "language", "is_active", "audience")
    search_fields = ("title", "slug", "keywords", "content")
    ordering = ("category", "title")
    actions = ("activate", "deactivate")
    readonly_fields = ("created_at", "updated_at")
    change_list_template = "admin/sophie_chat/knowledgebaseentry/change_list.html"
    fieldsets = (
        (None, {"fields": ("title", "slug", "language", "category", "audience", "is_active")}),
        (None, {"fields": ("content", "keywords", "url")}),
        (_("Page guide"), {"fields": ("url_pattern",), "classes": ("collapse",)}),
        (_("Linked object"), {"fields": ("content_type", "object_id"), "classes": ("collapse",)}),
        (_("Dates"), {"fields": ("created_at", "updated_at")}),
    )

    def _set_active(self, request: HttpRequest, queryset: QuerySet, active: bool) -> int:
        # update() skips the signals: touch updated_at so every process rebuilds its index.
        count = queryset.update(is_active=active, updated_at=timezone.now())
        search.invalidate()
        return count

    @admin.action(description=_("Activate the selected entries"))
    def activate(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = self._set_active(request, queryset, True)
        message = ngettext("%d entry activated.", "%d entries activated.", count) % count
        self.message_user(request, message, messages.SUCCESS)

    @admin.action(description=_("Deactivate the selected entries"))
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = self._set_active(request, queryset, False)
        message = ngettext("%d entry deactivated.", "%d entries deactivated.", count) % count
        self.message_user(request, message, messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        info = (self.model._meta.app_label, self.model._meta.model_name)
        extra = [
            path(
                "test-question/",
                self.admin_site.admin_view(self.test_question_view),
                name="{}_{}_test_question".format(*info),
            )
        ]
        return extra + super().get_urls()

    def test_question_view(self, request: HttpRequest) -> HttpResponse:
        """Run a question through the search as the assistant would, and show the scores."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = TestQuestionForm(request.GET or None)
        results: list[Any] = []
        searched = False
        kb = KnowledgeBase()
        if form.is_valid():
            searched = True
            data = form.cleaned_data
            results = kb.search(
                data["q"],
                language=data["language"],
                audience=data["audience"] or None,
                category=data["category"] or None,
                limit=10,
            )
        opts = self.model._meta
        rows = [
            {
                "rank": i,
                "result": r,
                "change_url": reverse(
                    f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change",
                    args=[r.entry.pk],
                ),
            }
            for i, r in enumerate(results, start=1)
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": opts,
            "title": _("Test a question"),
            "form": form,
            "rows": rows,
            "searched": searched,
            "engine": kb.engine,
        }
        return TemplateResponse(request, "sophie_chat/admin/kb_test_question.html", context)
