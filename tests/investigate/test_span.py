"""Windows that fit the data: the span a source holds and the note or hint a command prints about its window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from kubetrail.investigate.span import Span, data_span, default_note, empty_hint, events_in, resolve
from kubetrail.query.source import Window, open_files
from tests.query.events import event, write_ndjson

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
OLD = Span(datetime(2026, 3, 1, 10, 0, tzinfo=UTC), datetime(2026, 3, 2, 11, 0, tzinfo=UTC))


def test_no_note_when_the_data_is_recent_or_absent() -> None:
    assert default_note(Span(NOW - timedelta(days=3), NOW - timedelta(hours=2)), NOW) is None
    assert default_note(None, NOW) is None


def test_old_data_is_shown_whole_and_the_note_names_its_range() -> None:
    note = default_note(OLD, NOW)
    assert note == "note: nothing in the last 24h; showing the data's own range 2026-03-01T10:00Z to 2026-03-02T11:00Z"
    tail = default_note(OLD, NOW, tail=True)
    assert tail == "note: nothing in the last 24h; showing the data's last 24h 2026-03-01T11:00Z to 2026-03-02T11:00Z"
    assert default_note(OLD, NOW, timedelta(days=30)) is not None
    assert "last 30d" in (default_note(OLD, NOW, timedelta(days=30)) or "")


def test_an_empty_explicit_window_gets_the_data_range_as_a_hint() -> None:
    hint = empty_hint(NOW - timedelta(hours=1), None, OLD)
    assert hint == (
        "hint: no event since 2026-12-07T05:00Z; the data spans 2026-03-01T10:00Z to 2026-03-02T11:00Z"
        " (e.g. --since 2026-03-01T10:00Z)"
    )
    assert empty_hint(None, datetime(2026, 1, 1, tzinfo=UTC), OLD) is not None
    assert empty_hint(NOW, None, None) is None


def test_resolve_reads_durations_back_from_now_and_times() -> None:
    assert resolve("2h", NOW) == NOW - timedelta(hours=2)
    assert resolve("2026-03-01T10:00Z", NOW) == OLD.first
    assert resolve(None, NOW) is None


def test_span_and_window_counts_on_a_real_source(tmp_path: Path) -> None:
    documents = [
        event("a", time="2026-03-01T10:00:00.000000Z"),
        event("b", time="2026-03-02T11:00:00.000000Z", stage="RequestReceived"),
        event("b", time="2026-03-02T11:00:00.000000Z"),
    ]
    with open_files([write_ndjson(tmp_path / "audit.log", documents)]) as source:
        assert data_span(source) == OLD
        assert events_in(source, Window(since="2026-03-02T00:00:00Z")) == 2
        assert events_in(source, Window(since="2026-03-03T00:00:00Z")) == 0
