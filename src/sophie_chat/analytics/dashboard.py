"""The staff dashboard's filter form, access rule and template context."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from sophie_chat.analytics import charts, stats
from sophie_chat.models import UserType

MAX_RANGE_DAYS = 366
NONE = "\u2013"  # shown for a figure that has no data yet


def staff_required(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Active staff only: anonymous visitors go to the login page, other users get 403."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        user = request.user
        if user.is_active and user.is_staff:
            return view(request, *args, **kwargs)
        if not user.is_authenticated:
            try:
                login_url = reverse("admin:login")
            except NoReverseMatch:
                login_url = None  # settings.LOGIN_URL
            return redirect_to_login(request.get_full_path(), login_url)
        raise PermissionDenied

    return wrapped


# ISO dates: what <input type="date"> sends and expects whatever the site's locale.
_DATE = forms.DateInput({"type": "date"}, format="%Y-%m-%d")


class FilterForm(forms.Form):
    start = forms.DateField(label=_("From"), required=False, widget=_DATE)
    end = forms.DateField(label=_("To"), required=False, widget=_DATE)
    user_type = forms.ChoiceField(
        label=_("User type"),
        required=False,
        choices=[("", _("All users")), *UserType.choices],
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            raise forms.ValidationError(_("The start date must not be after the end date."))
        if start and end and (end - start).days >= MAX_RANGE_DAYS:
            raise forms.ValidationError(_("Choose a range of at most one year."))
        return data

    def filter_values(self, default_days: int = 30) -> stats.Filters:
        """The filters to apply; defaults (the last 30 days, everyone) for what is missing."""
        today = timezone.localdate()
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        end = data.get("end") or today
        start = data.get("start") or end - dt.timedelta(days=default_days - 1)
        return stats.Filters(start, end, data.get("user_type") or "")


def _percent(value: float | None) -> str:
    return NONE if value is None else f"{value:.1%}"


def _ms(value: int | None) -> str:
    if value is None:
        return NONE
    return f"{value} ms" if value < 1000 else f"{value / 1000:.2f} s"


def context(filters: stats.Filters) -> dict[str, Any]:
    data = stats.overview(filters)
    rated = sum(data["satisfaction"].values())
    cards = [
        (_("Active now"), f"{data['active_now']:,}", _("sessions active in the last 15 minutes")),
        (_("Sessions"), f"{data['sessions']:,}", _("in the selected range")),
        (_("Messages"), f"{data['messages']:,}", _("user and assistant")),
        (
            _("Response time p50 / p95"),
            f"{_ms(data['response_p50'])} / {_ms(data['response_p95'])}",
            "",
        ),
        (_("First token p50 / p95"), f"{_ms(data['ttft_p50'])} / {_ms(data['ttft_p95'])}", ""),
        (_("Cache hit rate"), _percent(data["cache_hit_rate"]), _("of answers")),
        (_("Fallback rate"), _percent(data["fallback_rate"]), _("of answers")),
        (_("Escalation rate"), _percent(data["escalation_rate"]), _("of sessions")),
        (_("Resolution rate"), _percent(data["resolution_rate"]), _("of ended sessions")),
        (
            _("Average rating"),
            NONE if data["average_rating"] is None else f"{data['average_rating']:.2f} / 5",
            _("%(count)s ratings") % {"count": rated},
        ),
    ]
    return {
        "data": data,
        "cards": cards,
        "sessions_chart": charts.line_chart(
            [(str(_("Sessions")), data["sessions_per_day"])], label=str(_("Sessions per day"))
        ),
        "messages_chart": charts.line_chart(
            [(str(_("Messages")), data["messages_per_day"])], label=str(_("Messages per day"))
        ),
        "response_chart": charts.line_chart(
            [
                ("p50", data["response_p50_per_day"]),
                ("p95", data["response_p95_per_day"]),
            ],
            label=str(_("Response time per day, seconds")),
            width=1180,
            height=220,
        ),
        "satisfaction_chart": charts.bar_chart(
            [
                (f"{'★' * score}", count)
                for score, count in sorted(data["satisfaction"].items(), reverse=True)
            ],
            label=str(_("Satisfaction distribution")),
            colour="#f2b01e",
        ),
        "intents_chart": charts.bar_chart(data["top_intents"], label=str(_("Top intents"))),
        "sources_chart": charts.bar_chart(
            sorted(data["sources"].items(), key=lambda kv: -kv[1]), label=str(_("Answer sources"))
        ),
    }
