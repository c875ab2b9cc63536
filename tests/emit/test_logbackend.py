"""The log backend on real files and streams: json and legacy lines, rotation, batch mode, union fan-out."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kubetrail.emit.backend import Backend, BackendError
from kubetrail.emit.buffered import BatchConfig, Buffered
from kubetrail.emit.legacy import event_string
from kubetrail.emit.logbackend import LogBackend, StreamWriter
from kubetrail.emit.rotation import MEGABYTE, RotatingFile
from kubetrail.emit.union import Union, union
from kubetrail.intake import read_events
from tests.emit.backends import Recording, sample_events


def fixed_clock() -> datetime:
    return datetime(2026, 3, 19, 10, 30, tzinfo=UTC)


def test_json_format_writes_one_event_per_line(tmp_path: Path) -> None:
    backend = LogBackend(RotatingFile(tmp_path / "audit.log", clock=fixed_clock))
    assert isinstance(backend, Backend) and backend.name() == "log"
    events = sample_events(20)
    assert backend.process_events(events[:5])
    assert backend.process_events(events[5:])
    backend.shutdown()
    lines = (tmp_path / "audit.log").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 21
    first = json.loads(lines[0])
    assert first["kind"] == "Event" and first["apiVersion"] == "audit.k8s.io/v1"
    assert list(read_events(tmp_path / "audit.log")) == events
    assert (backend.written, backend.failed) == (20, 0)


def test_legacy_format_writes_the_text_line(tmp_path: Path) -> None:
    backend = LogBackend(RotatingFile(tmp_path / "audit.log", clock=fixed_clock), format="legacy")
    events = sample_events(3)
    backend.process_events(events)
    backend.shutdown()
    text = (tmp_path / "audit.log").read_text()
    assert text == "".join(event_string(event) + "\n" for event in events)
    assert text.splitlines()[0].split(" AUDIT: ")[1].startswith('id="00000000-0000-4000-8000-000000000001"')


def test_unknown_format_is_refused_with_the_apiserver_message(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match='invalid audit log format xml, allowed formats are "json,legacy"'):
        LogBackend(StreamWriter(io.BytesIO()), format="xml")


def test_stream_output_for_dash(tmp_path: Path) -> None:
    stream = io.BytesIO()
    backend = LogBackend(StreamWriter(stream))
    events = sample_events(4)
    backend.process_events(events)
    backend.shutdown()
    assert [json.loads(line)["auditID"] for line in stream.getvalue().splitlines()] == [e.auditID for e in events]


def test_rotation_happens_between_events(tmp_path: Path) -> None:
    backend = LogBackend(RotatingFile(tmp_path / "audit.log", max_size_mb=1, max_backups=3, clock=fixed_clock))
    events = sample_events(300) * 10
    for start in range(0, len(events), 50):
        backend.process_events(events[start : start + 50])
    backend.shutdown()
    files = sorted(tmp_path.iterdir())
    assert len(files) >= 2
    decoded = []
    for path in sorted(files, key=lambda p: (p.name == "audit.log", p.name)):
        assert path.stat().st_size <= MEGABYTE
        decoded += list(read_events(path))
    assert decoded == events


def test_an_event_bigger_than_the_file_limit_is_counted_not_written(tmp_path: Path) -> None:
    rotating = RotatingFile(tmp_path / "audit.log", max_size_mb=1, clock=fixed_clock)
    backend = LogBackend(rotating)
    huge = sample_events(1)[0]
    huge.annotations = {"note": "x" * MEGABYTE}
    small = sample_events(2)
    assert not backend.process_events([small[0], huge, small[1]])
    backend.shutdown()
    assert (backend.written, backend.failed) == (2, 1)
    assert list(read_events(tmp_path / "audit.log")) == small


def test_batch_mode_writes_everything_by_shutdown(tmp_path: Path) -> None:
    log = LogBackend(RotatingFile(tmp_path / "audit.log", clock=fixed_clock))
    buffered = Buffered(log, BatchConfig.for_log(), plugin="log")
    assert buffered.name() == "buffered<log>"
    buffered.run()
    events = sample_events(250)
    for event in events:
        assert buffered.process_events([event])
    buffered.shutdown()
    assert list(read_events(tmp_path / "audit.log")) == events
    assert buffered.dropped == 0


def test_union_hands_every_event_to_every_backend(tmp_path: Path) -> None:
    first = LogBackend(RotatingFile(tmp_path / "a" / "audit.log", clock=fixed_clock))
    second = LogBackend(RotatingFile(tmp_path / "b" / "audit.log", clock=fixed_clock), format="legacy")
    refusing = Recording("refusing", accept=False)
    fan_out = Union([first, second, refusing])
    assert fan_out.name() == "union[log,log,refusing]"
    events = sample_events(10)
    assert not fan_out.process_events(events)
    fan_out.run()
    fan_out.shutdown()
    assert list(read_events(tmp_path / "a" / "audit.log")) == events
    assert len((tmp_path / "b" / "audit.log").read_text().splitlines()) == 10
    assert refusing.events == events and (refusing.started, refusing.stopped) == (1, 1)


def test_union_helper_skips_missing_backends() -> None:
    only = Recording()
    assert union(None, None) is None
    assert union(None, only) is only
    both = union(only, Recording("other"))
    assert both is not None and both.name() == "union[recording,other]"
