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
