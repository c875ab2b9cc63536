"""The inline SVG charts: labels are escaped and bar lengths are proportional to the counts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime, timedelta

from kubetrail.ui.charts import bars, stacked_columns

SVG = "{http://www.w3.org/2000/svg}"


def test_bar_labels_are_escaped_and_lengths_proportional() -> None:
    markup = str(bars([("<script>x</script>", 40), ("b&c", 10)]))
    assert "<script>" not in markup
    root = ElementTree.fromstring(markup)
    widths = [float(rect.get("width", "0")) for rect in root.iter(f"{SVG}rect")]
    assert widths[0] == 4 * widths[1]
    assert [title.text for title in root.iter(f"{SVG}title")] == ["<script>x</script>: 40", "b&c: 10"]


def test_stacked_columns_stack_series_within_the_peak() -> None:
    start = datetime(2026, 3, 19, 10, tzinfo=UTC)
    buckets = [start, start + timedelta(minutes=1)]
    root = ElementTree.fromstring(str(stacked_columns(buckets, {"Error": [2, 0], "Warning": [2, 1]}, height=132)))
    heights = [float(rect.get("height", "0")) for rect in root.iter(f"{SVG}rect")]
    assert heights == [50.0, 50.0, 25.0]
    assert re.search(r"max 4", ElementTree.tostring(root, encoding="unicode"))


def test_empty_data_says_so() -> None:
    assert "nothing" in str(bars([])) and "nothing" in str(stacked_columns([], {}))


def test_time_axis_ticks_are_round_and_inside_the_range() -> None:
    from kubetrail.ui.charts import nice_ticks, time_ticks

    start = datetime(2026, 3, 19, 10, 3, 17, tzinfo=UTC)
    ticks, label = time_ticks(start, start + timedelta(hours=14))
    assert ticks and all(start <= tick <= start + timedelta(hours=14) for tick in ticks)
    assert all(tick.minute == 0 and tick.second == 0 for tick in ticks) and len(ticks) <= 8
    assert label == "%H:%M"
    assert nice_ticks(37) == [0, 10, 20, 30, 40] and nice_ticks(0.5)[-1] >= 0.5


def test_timeline_draws_axes_and_links_each_column_to_its_range() -> None:
    from kubetrail.ui.charts import timeline

    start = datetime(2026, 3, 19, 10, tzinfo=UTC)
    ranges: list[tuple[datetime, datetime]] = []

    def link(low: datetime, high: datetime) -> str:
        ranges.append((low, high))
        return f"/x?from={low:%H%M}&<"

    markup = str(timeline(start, timedelta(minutes=5), {"a<b": [1, 0, 3]}, link=link, brush={"q": '"x"'}))
    root = ElementTree.fromstring(markup)
    assert [anchor.get("href") for anchor in root.iter(f"{SVG}a")] == ["/x?from=1000&<", "/x?from=1010&<"]
    assert ranges == [
        (start, start + timedelta(minutes=5)),
        (start + timedelta(minutes=10), start + timedelta(minutes=15)),
    ]
    assert root.get("data-q") == '"x"' and root.get("data-step") == "300"
    labels = [text.text for text in root.iter(f"{SVG}text") if text.get("class") == "tick"]
    assert "0" in labels and "10:00" in labels and "10:10" in labels
    assert "a<b" in "".join(title.text or "" for title in root.iter(f"{SVG}title"))
