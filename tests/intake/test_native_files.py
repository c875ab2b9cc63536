"""Native audit logs: a bad line is refused with its reason and the rest still loads."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from kubetrail.intake import format_of, read_path
from kubetrail.model import encode_event_list
from tests.store.factory import make_events, ndjson


def test_ndjson_with_bad_lines(tmp_path: Path) -> None:
    events = make_events(0, 3)
    lines = ndjson(events).splitlines()
    path = tmp_path / "audit.log"
    path.write_bytes(b"\n".join([lines[0], b"not json", lines[1], b'{"kind":"Event","level":"Metadata"}', lines[2]]))
    assert format_of(path) == "k8s"
    (batch,) = list(read_path(path))
    assert [event.auditID for event in batch.events] == [event.auditID for event in events]
    assert batch.raws == [lines[0], lines[1], lines[2]]
    assert [rejected.line for rejected in batch.rejected] == [2, 4]
    assert "auditID" in batch.rejected[1].reason or "missing" in batch.rejected[1].reason


def test_gzip_eventlist_lines_and_json_array(tmp_path: Path) -> None:
    events = make_events(0, 4)
    path = tmp_path / "audit.log.gz"
    path.write_bytes(gzip.compress(encode_event_list(events[:2]) + b"\n" + encode_event_list(events[2:]) + b"\n"))
    ids = [event.auditID for batch in read_path(path) for event in batch.events]
    assert ids == [event.auditID for event in events]
    array = tmp_path / "events.json"
    array.write_bytes(b"[\n" + b",\n".join(ndjson(events).splitlines()) + b"\n]")
    assert [event.auditID for batch in read_path(array) for event in batch.events] == ids


def test_pretty_printed_event_list(tmp_path: Path) -> None:
    events = make_events(0, 2)
    pretty = json.dumps(json.loads(encode_event_list(events)), indent=2)
    path = tmp_path / "list.json"
    path.write_text(pretty)
    assert [event.auditID for batch in read_path(path) for event in batch.events] == [e.auditID for e in events]


def test_v1beta1_corpus_events_load(corpus: Path) -> None:
    total = 0
    rejected = 0
    for path in sorted((corpus / "falco" / "events").glob("*.json")):
        for batch in read_path(path, "k8s"):
            total += len(batch.events)
            rejected += len(batch.rejected)
    assert total > 20
    assert rejected == 1  # fal_01_003.json is deliberately malformed ({"kind": 0})
