"""The shared benchmark corpus (bench/corpus.py): exact counts, recorded sizes, caching on disk."""

from __future__ import annotations

import os
from pathlib import Path

from bench.corpus import realistic_events, write_realistic_ndjson

from kubetrail.intake import read_events
from kubetrail.model import Level, Stage, encode_ndjson


def test_realistic_events_are_recorded_under_the_sample_policy() -> None:
    events = realistic_events(3000, seed=3)
    assert len(events) == 3000
    assert all(event.stage != Stage.REQUEST_RECEIVED for event in events)
    assert {Level.METADATA, Level.REQUEST, Level.REQUEST_RESPONSE} <= {event.level for event in events}
    average = len(encode_ndjson(events)) / len(events)
    assert 900 <= average <= 1600
    assert realistic_events(3000, seed=3) == events  # deterministic


def test_ndjson_is_written_once_and_reused(tmp_path: Path) -> None:
    target = tmp_path / "corpus.ndjson"
    path = write_realistic_ndjson(target, 1200, seed=3)
    assert path == target
    assert sum(1 for _ in read_events(path)) == 1200
    os.utime(path, (1, 1))
    assert write_realistic_ndjson(target, 1200, seed=3).stat().st_mtime == 1
    write_realistic_ndjson(target, 1300, seed=3)  # another size: rebuilt
    assert sum(1 for _ in read_events(path)) == 1300
