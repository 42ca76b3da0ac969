"""HTTP views of the app."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from sophie_chat.analytics import export, metrics, stats
from sophie_chat.analytics.dashboard import FilterForm, staff_required
from sophie_chat.analytics.dashboard import context as dashboard_context
from sophie_chat.conf import get_config
from sophie_chat.logging import get_logger
from sophie_chat.models import ChatSession, UserType

logger = get_logger(__name__)


def health(request: HttpRequest) -> JsonResponse:
    """A liveness probe for load balancers: no database or Redis work."""
    return JsonResponse({"status": "ok"})


# --- Staff analytics: dashboard, CSV exports, Prometheus metrics ---------------------------------


@staff_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The staff dashboard: figures and charts for a date range and user type."""
    form = FilterForm(request.GET or None)
    filters = form.filter_values()
    if not form.is_bound:
        form = FilterForm(initial={"start": filters.start, "end": filters.end})
    context = {
        **dashboard_context(filters),
        "form": form,
        "filters": filters,
        "user_type_label": dict(UserType.choices).get(filters.user_type, ""),
        "assistant_name": get_config()["ASSISTANT_NAME"],
    }
    context["export_query"] = urlencode(
        {
            "start": filters.start.isoformat(),
            "end": filters.end.isoformat(),
            "user_type": filters.user_type,
        }
    )
    return render(request, "sophie_chat/dashboard/index.html", context)


@staff_required
def export_csv(request: HttpRequest, kind: str) -> StreamingHttpResponse:
    """``sessions.csv`` or ``messages.csv`` for the dashboard's filters, streamed."""
    form = FilterForm(request.GET or None)
    filters = form.filter_values()
    delimiter = ";" if request.GET.get("delimiter") in (";", "semicolon") else ","
    lines = export.csv_lines(kind, filters, delimiter=delimiter)
    content: Any = _async_chunks(lines) if isinstance(request, ASGIRequest) else lines
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    name = f"sophie-chat-{kind}-{filters.start:%Y%m%d}-{filters.end:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    logger.info(
        "export_started",
        kind=kind,
        start=str(filters.start),
        end=str(filters.end),
        user_type=filters.user_type,
        staff=request.user.pk,
    )
    return response


async def _async_chunks(lines: Iterator[str]) -> AsyncIterator[str]:
    # Under ASGI Django would read a sync iterator to the end into memory; pull chunk by chunk
    # in the thread that owns the database connection instead.
    pull = sync_to_async(lambda: next(lines, None), thread_sensitive=True)
    while (chunk := await pull()) is not None:
        yield chunk


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics for staff or for ``Authorization: Bearer <METRICS_TOKEN>``."""
    token = get_config()["METRICS_TOKEN"]
    header = request.headers.get("Authorization", "")
    bearer_ok = (
        bool(token)
        and header.startswith("Bearer ")
        and hmac.compare_digest(header[7:].strip().encode(), str(token).encode())
    )
    user = getattr(request, "user", None)  # a scrape may skip the auth middleware's paths
    if not (bearer_ok or (user is not None and user.is_active and user.is_staff)):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="sophie-chat-metrics"'
        return response
    if not metrics.available():
        return HttpResponse(
            "prometheus-client is not installed: pip install django-sophie-chat[prometheus]\n",
            status=501,
            content_type="text/plain",
        )
    since = timezone.now() - stats.ACTIVE_NOW_WINDOW
    metrics.set_active_sessions(
        ChatSession.objects.filter(status="active", last_activity_at__gte=since).count()
    )
    body, content_type = metrics.exposition(request.headers.get("Accept", ""))
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
