"""Charts as inline SVG rendered on the server: no script, no CDN, and every label escaped.

Sizes and colours are SVG attributes (not `style`), so the pages' Content-Security-Policy can forbid inline
styles. Each bar carries a `<title>`, which browsers show as a tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

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


_STEPS = (
    timedelta(seconds=1),
    timedelta(seconds=5),
    timedelta(seconds=10),
    timedelta(seconds=30),
    timedelta(minutes=1),
    timedelta(minutes=2),
    timedelta(minutes=5),
    timedelta(minutes=10),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(days=1),
    timedelta(days=2),
    timedelta(days=7),
    timedelta(days=14),
    timedelta(days=30),
)


def bucket_step(span: timedelta, buckets: int = 90, minimum: timedelta = timedelta(seconds=1)) -> timedelta:
    """The smallest round step (1 s, 5 s, … 1 min, 5 min, … 1 d, 7 d) that covers `span` in at most `buckets`."""
    for step in _STEPS:
        if step >= minimum and span / step <= buckets:
            return step
    return _STEPS[-1]


def nice_ticks(peak: float, count: int = 4) -> list[float]:
    """Round tick values from 0 up to at least `peak` (steps of 1, 2 or 5 times a power of ten), about `count`."""
    if peak <= 0:
        return [0.0, 1.0]
    rough = peak / count
    magnitude = 10 ** math.floor(math.log10(rough))
    step = next(factor * magnitude for factor in (1, 2, 5, 10) if factor * magnitude >= rough)
    top = math.ceil(peak / step) * step
    return [step * index for index in range(round(top / step) + 1)]


def time_ticks(start: datetime, end: datetime, count: int = 8) -> tuple[list[datetime], str]:
    """Tick times aligned to a round step between `start` and `end`, and the strftime format to label them."""
    span = max(end - start, timedelta(seconds=1))
    step = bucket_step(span, count)
    seconds = int(step.total_seconds())
    first = math.ceil(start.timestamp() / seconds) * seconds
    ticks = []
    moment = first
    while moment <= end.timestamp():
        ticks.append(datetime.fromtimestamp(moment, UTC))
        moment += seconds
    if step >= timedelta(days=1):
        label = "%m-%d"
    elif span > timedelta(days=1):
        label = "%m-%d %H:%M"
    elif step < timedelta(minutes=1):
        label = "%H:%M:%S"
    else:
        label = "%H:%M"
    return ticks, label


def _count(value: float) -> str:
    if value >= 1_000_000:
        return _number(value / 1_000_000) + "M"
    if value >= 10_000:
        return _number(value / 1000) + "k"
    return f"{int(value):,}"


def timeline(
    start: datetime,
    step: timedelta,
    series: Mapping[str, Sequence[int]],
    *,
    colours: Mapping[str, str] = PRIORITY_COLOURS,
    width: int = 1200,
    height: int = 170,
    link: Callable[[datetime, datetime], str] | None = None,
    brush: Mapping[str, str] | None = None,
    unit: str = "",
) -> Markup:
    """Stacked columns over time with a y axis (round ticks, grid lines) and a time axis (round ticks).

    One column per `step` from `start`; `link(bucket_start, bucket_end)` makes each column a link (narrowing a
    search without script); `brush` adds `data-` attributes the page's script reads to let a drag select a range.
    The SVG scales to its container's width (viewBox), so the chart uses the page's width."""
    length = max((len(values) for values in series.values()), default=0)
    if not length:
        return Markup('<p class="empty">nothing in this range</p>')
    names = [name for name in colours if name in series] + sorted(name for name in series if name not in colours)
    totals = [sum(series[name][index] for name in names if index < len(series[name])) for index in range(length)]
    ticks = nice_ticks(max(totals))
    top = ticks[-1] or 1
    left, right, above, below = 52, 28, 8, 22
    plot_w, plot_h = width - left - right, height - above - below
    column = plot_w / length
    end = start + step * length
    attributes = ""
    if brush is not None:
        data = {
            "start": start.isoformat().replace("+00:00", "Z"),
            "step": str(int(step.total_seconds())),
            "count": str(length),
            "left": str(left),
            "plot": str(plot_w),
            "width": str(width),
            **brush,
        }
        attributes = " ".join(f'data-{key}="{escape(value)}"' for key, value in data.items())
    parts = [
        f'<svg class="chart wide{" brushable" if brush is not None else ""}" role="img" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" {attributes}>'
    ]
    for value in ticks:
        y = above + plot_h - plot_h * value / top
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{_number(y)}" y2="{_number(y)}" '
            'stroke="#e3e6ea"/>'
            f'<text class="tick" x="{left - 6}" y="{_number(y + 4)}" text-anchor="end">{_count(value)}</text>'
        )
    for index in range(length):
        bucket = start + step * index
        base = float(above + plot_h)
        rects = []
        for name in names:
            count = series[name][index] if index < len(series[name]) else 0
            if not count:
                continue
            tall = plot_h * count / top
            base -= tall
            rects.append(
                f'<rect x="{_number(left + index * column + 0.5)}" y="{_number(base)}" '
                f'width="{_number(max(column - 1, 0.8))}" height="{_number(tall)}" '
                f'fill="{colours.get(name, _DEFAULT_COLOUR)}">'
                f"<title>{escape(bucket.strftime('%Y-%m-%d %H:%M:%S'))} +{escape(_span(step))} {escape(name)}: "
                f"{count:,}</title></rect>"
            )
        if rects and link is not None:
            parts.append(f'<a href="{escape(link(bucket, bucket + step))}">{"".join(rects)}</a>')
        else:
            parts.extend(rects)
    axis_y = above + plot_h
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{axis_y}" y2="{axis_y}" stroke="#8a939c"/>')
    moments, label = time_ticks(start, end)
    for moment in moments:
        x = left + plot_w * (moment - start) / (end - start)
        parts.append(
            f'<line x1="{_number(x)}" x2="{_number(x)}" y1="{axis_y}" y2="{axis_y + 4}" stroke="#8a939c"/>'
            f'<text class="tick" x="{_number(x)}" y="{axis_y + 16}" text-anchor="middle">'
            f"{escape(moment.strftime(label))}</text>"
        )
    if unit:
        per = f"{escape(unit)} per {escape(_span(step))}"
        parts.append(f'<text class="unit" x="{left + 4}" y="{above + 10}">{per}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _span(step: timedelta) -> str:
    seconds = int(step.total_seconds())
    for size, name in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds % size == 0:
            return f"{seconds // size} {name}"
    return f"{seconds} s"
