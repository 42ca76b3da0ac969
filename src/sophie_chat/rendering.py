"""Stand-in renderer; the AI pipeline issue replaces it with markdown-it-py + nh3."""

from __future__ import annotations

from django.utils.html import escape, linebreaks


def render_markdown(text: str) -> str:
    """Return safe HTML for an assistant message."""
    return str(linebreaks(escape(text)))
