"""A strict Content-Security-Policy for the CSP browser test's server (settings: csp_settings).

Each response gets a fresh nonce (``request.csp_nonce``, as django-csp names it, which the widget's
template tag passes to its script) and a policy with no inline script or style and no other host.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse


def policy(nonce: str, host: str) -> str:
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self'; img-src 'self';"
        f" font-src 'self'; connect-src 'self' ws://{host}; base-uri 'none';"
        " form-action 'none'; frame-src 'none'; object-src 'none'; frame-ancestors 'none'"
    )


class StrictCSPMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(16)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["Content-Security-Policy"] = policy(nonce, request.get_host())
        return response
