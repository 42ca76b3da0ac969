"""Show the site's own 404 page even with ``DEBUG`` on.

With ``DEBUG`` on, Django answers a ``Http404`` with its technical page instead of ``handler404``.
The demo runs with ``DEBUG`` on by default, and its 404 page is something to try: it carries the
chat, and Sophie offers help for error pages. So a view's ``Http404`` renders that page here.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse

from marketplace.views import page_not_found


class NotFoundPageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Http404):
            return page_not_found(request, exception)
        return None
