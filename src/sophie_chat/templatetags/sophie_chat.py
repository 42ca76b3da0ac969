"""Stand-in template tag; the widget issue replaces it."""

from __future__ import annotations

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def sophie_chat_widget(context: template.Context) -> str:
    return ""
