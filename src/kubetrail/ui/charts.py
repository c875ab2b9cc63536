"""Charts as inline SVG rendered on the server: no script, no CDN, and every label escaped.

Sizes and colours are SVG attributes (not `style`), so the pages' Content-Security-Policy can forbid inline
styles. Each bar carries a `<title>`, which browsers show as a tooltip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from markupsafe import Markup, escape

PRIORITY_COLOURS = {
    "Emergency": "#7f0000",
    "Alert": "#b71c1c",
    "Critical": "#d32f2f",
    "Error": "#f57c00",
    "Warning": "#fbc02d",
    "Notice": "#1976d2",
    "Informational": "#64b5f6",
    "Debug": "#9e9e9e",
}
_DEFAULT_COLOUR = "#607d8b"
_TOP = 14
"""Room above the columns for the peak label."""


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def bars(
    items: Sequence[tuple[str, int]],
    *,
    link: Callable[[str], str] | None = None,
    width: int = 360,
    label_width: int = 150,
    row: int = 18,
) -> Markup:
    """Horizontal bars, one per (label, count), longest first as given; `link(label)` makes each a link."""
    if not items:
        return Markup('<p class="empty">nothing in this window</p>')
    peak = max(count for _, count in items) or 1
    bar_space = width - label_width - 60
    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{row * len(items)}" '
        f'viewBox="0 0 {width} {row * len(items)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for position, (label, count) in enumerate(items):
        y = position * row
        length = max(1.0, bar_space * count / peak)
        shown = label if len(label) <= 22 else label[:21] + "…"
        bar = (
            f"<g><title>{escape(label)}: {count:,}</title>"
            f'<text x="{label_width - 6}" y="{y + row - 5}" text-anchor="end">{escape(shown)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{_number(length)}" height="{row - 6}" fill="#3f7fbf"/>'
            f'<text x="{_number(label_width + length + 4)}" y="{y + row - 5}">{count:,}</text></g>'
        )
        parts.append(f'<a href="{escape(link(label))}">{bar}</a>' if link is not None else bar)
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_columns(
    buckets: Sequence[datetime],
    series: Mapping[str, Sequence[int]],
    *,
    colours: Mapping[str, str] = PRIORITY_COLOURS,
    width: int = 720,
    height: int = 140,
) -> Markup:
    """One column per time bucket, stacked by series (in `colours` order), with the first and last time below."""
    if not buckets:
        return Markup('<p class="empty">nothing in this window</p>')
    names = [name for name in colours if name in series] + sorted(name for name in series if name not in colours)
    totals = [sum(series[name][index] for name in names) for index in range(len(buckets))]
    peak = max(totals) or 1
    plot = height - 18 - _TOP
    step = width / len(buckets)
    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for index, bucket in enumerate(buckets):
        base = float(_TOP + plot)
        for name in names:
            count = series[name][index]
            if not count:
                continue
            tall = plot * count / peak
            base -= tall
            parts.append(
                f'<rect x="{_number(index * step + 1)}" y="{_number(base)}" width="{_number(max(step - 2, 1))}" '
                f'height="{_number(tall)}" fill="{colours.get(name, _DEFAULT_COLOUR)}">'
                f"<title>{escape(bucket.strftime('%Y-%m-%d %H:%M'))} {escape(name)}: {count:,}</title></rect>"
            )
    parts.append(f'<text x="0" y="{height - 4}">{escape(buckets[0].strftime("%m-%d %H:%M"))}</text>')
    parts.append(
        f'<text x="{width}" y="{height - 4}" text-anchor="end">{escape(buckets[-1].strftime("%m-%d %H:%M"))}</text>'
    )
    parts.append(f'<text x="{width}" y="10" text-anchor="end">max {peak:,}</text></svg>')
    return Markup("".join(parts))


def legend(names: Sequence[str], colours: Mapping[str, str] = PRIORITY_COLOURS) -> Markup:
    """Coloured squares with the series names, in the colours' order (most severe priority first)."""
    names = [name for name in colours if name in names] + sorted(name for name in names if name not in colours)
    items = [
        f'<span class="legend-item"><svg width="10" height="10"><rect width="10" height="10" '
        f'fill="{colours.get(name, _DEFAULT_COLOUR)}"/></svg> {escape(name)}</span>'
        for name in names
    ]
    return Markup(" ".join(items))
