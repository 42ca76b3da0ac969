"""Small inline SVG charts, drawn on the server: no JavaScript, no CDN, nothing to download.

Each function returns a ``SafeString`` ready for a template. Numbers are formatted by us; every
piece of text goes through ``escape`` because labels may come from users (intents, questions).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

ACCENT = "#5b2bd6"
ACCENT_2 = "#e0782b"
GRID = "#e6e3ef"
TEXT = "#4a4658"


def _nice_max(value: float) -> float:
    """The top of the axis: four equal steps of a round size covering ``value``."""
    if value <= 0:
        return 1.0
    quarter = value / 4
    magnitude = 10 ** math.floor(math.log10(quarter))
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if quarter <= step * magnitude:
            return 4 * step * magnitude
    return value


def _fmt(value: float) -> str:
    if value == int(value):
        return f"{value:,.0f}"
    return f"{value:.2f}".rstrip("0")


def _svg(width: int, height: int, label: str, body: list[str]) -> SafeString:
    head = (
        f'<svg class="sc-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
    )
    # Every text in body was escaped where it was built.
    return mark_safe(head + "".join(body) + "</svg>")  # noqa: S308


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[dt.date, float]]]],
    *,
    label: str,
    width: int = 560,
    height: int = 200,
) -> SafeString:
    """Lines over days: ``[("Sessions", [(date, value), ...]), ...]`` (two series at most)."""
    left, right, top, bottom = 44, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    days = [d for d, _ in series[0][1]] if series else []
    peak = _nice_max(max((v for _, pts in series for _, v in pts), default=0))
    body: list[str] = []
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 3:.1f}" font-size="10" fill="{TEXT}" '
            f'text-anchor="end">{_fmt(peak * i / 4)}</text>'
        )
    n = len(days)
    step = plot_w / max(1, n - 1)
    every = max(1, n // 7)
    for i, day in enumerate(days):
        # The last day always gets a label; the regular one just before it is dropped if close.
        if (i % every == 0 and n - 1 - i >= every / 2) or i == n - 1:
            anchor = "end" if i == n - 1 and n > 1 else "middle"
            body.append(
                f'<text x="{left + i * step:.1f}" y="{height - 8}" font-size="10" fill="{TEXT}" '
                f'text-anchor="{anchor}">{day:%d/%m}</text>'
            )
    for index, (name, points) in enumerate(series[:2]):
        colour = ACCENT if index == 0 else ACCENT_2
        xy = [
            (left + i * step, top + plot_h - plot_h * v / peak, day, v)
            for i, (day, v) in enumerate(points)
        ]
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in xy)
        body.append(
            f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2" '
            f'stroke-linejoin="round"><title>{escape(name)}</title></polyline>'
        )
        if n <= 45:
            body.extend(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}">'
                f"<title>{escape(name)} {day.isoformat()}: {_fmt(v)}</title></circle>"
                for x, y, day, v in xy
            )
    return _svg(width, height, label, body)


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    label: str,
    width: int = 560,
    bar_height: int = 22,
    colour: str = ACCENT,
    value_format: str = "{:,.0f}",
) -> SafeString:
    """Horizontal bars with their labels on the left and values at the end."""
    label_w, gap, right = 170, 6, 56
    height = max(1, len(bars)) * (bar_height + gap) + gap
    peak = max((v for _, v in bars), default=0) or 1
    plot_w = width - label_w - right
    body: list[str] = []
    if not bars:
        body.append(f'<text x="8" y="{bar_height}" font-size="12" fill="{TEXT}">—</text>')
    for i, (name, value) in enumerate(bars):
        y = gap + i * (bar_height + gap)
        w = max(1.0, plot_w * value / peak) if value else 0.0
        short = name if len(name) <= 26 else name[:25] + "…"
        text_y = y + bar_height * 0.68
        body.append(
            f'<text x="{label_w - 8}" y="{text_y:.1f}" font-size="12" fill="{TEXT}" '
            f'text-anchor="end">{escape(short)}<title>{escape(name)}</title></text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_height}" rx="3" '
            f'fill="{escape(colour)}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{text_y:.1f}" font-size="12" '
            f'fill="{TEXT}">{escape(value_format.format(value))}</text>'
        )
    return _svg(width, height, label, body)
