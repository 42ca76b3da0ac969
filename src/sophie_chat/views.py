"""HTTP views of the app."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse


def health(request: HttpRequest) -> JsonResponse:
    """A liveness probe for load balancers: no database or Redis work."""
    return JsonResponse({"status": "ok"})
