"""``{% sophie_chat_widget %}``: the chat launcher and window, once per page (in base.html)."""

from __future__ import annotations

from typing import Any

from django import template

from sophie_chat.widget import widget_html

register = template.Library()


@register.simple_tag(takes_context=True)
def sophie_chat_widget(context: template.Context, status: Any = None) -> str:
    """Render the widget; ``status`` (or the ``sophie_chat_status`` context variable) is the
    page's HTTP status, so that Sophie can help on error pages."""
    if status is None:
        status = context.get("sophie_chat_status")
    request = context.get("request")
    return widget_html(request, status=status, nonce=context.get("csp_nonce"))
