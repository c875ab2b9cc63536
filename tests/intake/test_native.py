"""Native audit logs through the intake: every layout the apiserver and its tools write, and located refusals.

A bad record never costs its neighbours: it becomes a rejection naming its line (or item) and field.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest

from kubetrail.intake import Batch, IntakeError, Rejection, read_bytes, read_events, read_stream
from kubetrail.intake.split import MAX_NESTING
from kubetrail.model import Event, decode_event, encode_event
from tests.model.events import FULL_EVENT, HEALTHZ_EVENT, V1BETA1_EVENT, as_v1, dumps

EVENTS = [FULL_EVENT, HEALTHZ_EVENT, V1BETA1_EVENT]


def meaning(events: list[Event]) -> list[Any]:
    return [json.loads(encode_event(event)) for event in events]


def expected() -> list[Event]:
    return [decode_event(dumps(event)) for event in EVENTS]


def event_list(items: list[dict[str, Any]], version: str = "audit.k8s.io/v1") -> dict[str, Any]:
    return {"kind": "EventList", "apiVersion": version, "metadata": {}, "items": items}


def decode(data: bytes, source: str = "audit.log") -> tuple[list[Event], list[Rejection]]:
    batches: list[Batch] = list(read_bytes(data, source=source))
    return [e for b in batches for e in b.events], [r for b in batches for r in b.rejected]


LAYOUTS: dict[str, bytes] = {
    "ndjson": b"\n".join(dumps(event) for event in EVENTS) + b"\n",
    "ndjson-crlf-blank-lines": b"\r\n\r\n".join(dumps(event) for event in EVENTS),
    "ndjson-no-final-newline": b"\n".join(dumps(event) for event in EVENTS),
    "event-list": dumps(event_list(EVENTS)),
    "event-list-v1beta1": dumps(event_list(EVENTS, "audit.k8s.io/v1beta1")),
    "event-list-items-without-kind": dumps(
        event_list([{k: v for k, v in event.items() if k not in ("kind", "apiVersion")} for event in EVENTS])
    ),
    "ndjson-of-event-lists": dumps(event_list(EVENTS[:1])) + b"\n" + dumps(event_list(EVENTS[1:])) + b"\n",
    "ndjson-mixed": dumps(EVENTS[0]) + b"\n" + dumps(event_list(EVENTS[1:])) + b"\n",
    "array-of-events": dumps(EVENTS),
    "array-of-event-lists": dumps([event_list(EVENTS[:2]), event_list(EVENTS[2:])]),
    "array-pretty": dumps(EVENTS, indent=2),
    "pretty-event-list": dumps(event_list(EVENTS), indent=4),
}


@pytest.mark.parametrize("data", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_layout(data: bytes) -> None:
    events, rejected = decode(data)
    assert rejected == []
    assert meaning(events) == meaning(expected())
    assert all(event.apiVersion == "audit.k8s.io/v1" for event in events)


@pytest.mark.parametrize("data", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_gzip_of_any_layout_is_found_by_magic(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "audit.log.1"
    path.write_bytes(gzip.compress(data))
    assert meaning(list(read_events(path))) == meaning(expected())


def test_concatenated_gzip_members_are_all_read() -> None:
    """logrotate's `compress` and `cat a.gz b.gz` both give several members; each one's events count."""
    members = b"".join(gzip.compress(dumps(event) + b"\n") for event in EVENTS)
    events, rejected = decode(members)
    assert rejected == [] and meaning(events) == meaning(expected())


def test_many_tiny_gzip_members_take_linear_time() -> None:
    empty = gzip.compress(b"")
    data = empty * 20000 + gzip.compress(dumps(HEALTHZ_EVENT) + b"\n")
    events, _ = decode(data)
    assert [event.auditID for event in events] == [HEALTHZ_EVENT["auditID"]]


def test_event_without_kind_is_an_event() -> None:
    bare = {key: value for key, value in HEALTHZ_EVENT.items() if key != "kind"}
    events, _ = decode(dumps(bare))
    assert events == [decode_event(dumps(HEALTHZ_EVENT))]


def test_raw_json_is_kept_for_ndjson_and_event_list_items() -> None:
    lines = [dumps(event) for event in EVENTS]
    (batch,) = read_bytes(b"\n".join(lines))
    assert batch.raws == lines
    (batch,) = read_bytes(dumps(event_list(EVENTS)))
    assert [json.loads(raw or b"") for raw in batch.raws] == EVENTS


def test_a_non_seekable_stream(tmp_path: Path) -> None:
    path = tmp_path / "audit.log.gz"
    path.write_bytes(gzip.compress(LAYOUTS["ndjson"]))
    with open(path, "rb") as handle:
        events = [event for batch in read_stream(handle, source=str(path)) for event in batch.events]
    assert events == expected()


def test_empty_input_has_no_events(tmp_path: Path) -> None:
    assert decode(b"") == ([], [])
    assert decode(b"\n \n\t\n") == ([], [])
    assert decode(gzip.compress(b"")) == ([], [])
    (tmp_path / "empty.log").write_bytes(b"")
    assert list(read_events(tmp_path / "empty.log")) == []


def test_large_ndjson_streams_across_reads_in_batches() -> None:
    line = dumps(FULL_EVENT)
    count = (5 << 20) // len(line) + 3
    batches = list(read_bytes((line + b"\n") * count))
    assert sum(len(batch.events) for batch in batches) == count
    assert max(len(batch.events) for batch in batches) <= 2000


# ---- refusals -------------------------------------------------------------------------------------------------


def refusal(data: bytes) -> Rejection:
    _, rejected = decode(data)
    assert len(rejected) == 1, rejected
    assert rejected[0].source == "audit.log"
    return rejected[0]


def test_bad_field_on_a_later_line_keeps_the_others() -> None:
    bad = dict(HEALTHZ_EVENT, user={"username": 42})
    events, rejected = decode(dumps(FULL_EVENT) + b"\n\n" + dumps(bad) + b"\n" + dumps(HEALTHZ_EVENT))
    assert [event.auditID for event in events] == [FULL_EVENT["auditID"], HEALTHZ_EVENT["auditID"]]
    (item,) = rejected
    assert item.line == 3 and "`$.user.username`" in item.reason
    assert str(item).startswith("audit.log:3: ")
    assert item.raw == dumps(bad)


def test_bad_value_on_the_first_line() -> None:
    item = refusal(dumps(dict(FULL_EVENT, level="Everything")) + b"\n" + dumps(HEALTHZ_EVENT))
    assert item.line == 1 and "`$.level`" in item.reason


def test_missing_required_field_is_named() -> None:
    incomplete = {key: value for key, value in HEALTHZ_EVENT.items() if key != "auditID"}
    item = refusal(dumps(HEALTHZ_EVENT) + b"\n" + dumps(incomplete))
    assert item.line == 2 and "auditID" in item.reason


def test_bad_item_of_an_event_list_is_named_and_the_rest_kept() -> None:
    events, rejected = decode(dumps(event_list([HEALTHZ_EVENT, dict(HEALTHZ_EVENT, stage="Done"), FULL_EVENT])))
    assert len(events) == 2
    (item,) = rejected
    assert "items[1]" in item.reason and "`$.stage`" in item.reason


def test_malformed_json_line() -> None:
    item = refusal(dumps(HEALTHZ_EVENT) + b"\n" + dumps(HEALTHZ_EVENT)[:-5] + b"\n" + dumps(HEALTHZ_EVENT))
    assert item.line == 2


def test_malformed_pretty_printed_document_names_its_line() -> None:
    text = dumps(FULL_EVENT, indent=2).replace(b'"verb": "create"', b'"verb": create')
    item = refusal(text)
    assert item.line == text[: text.index(b": create")].count(b"\n") + 1


def test_wrong_kind() -> None:
    item = refusal(b'{"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "web"}}\n')
    assert "`$.kind`" in item.reason and "Event or EventList" in item.reason


@pytest.mark.parametrize("version", ["audit.k8s.io/v2", "audit.k8s.io/v1alpha1", "v1"])
def test_unknown_api_version(version: str) -> None:
    item = refusal(dumps(HEALTHZ_EVENT) + b"\n" + dumps(dict(HEALTHZ_EVENT, apiVersion=version)))
    assert item.line == 2 and version in item.reason and "`$.apiVersion`" in item.reason


def test_unknown_api_version_of_an_event_list() -> None:
    assert "audit.k8s.io/v2" in refusal(dumps(event_list([HEALTHZ_EVENT], "audit.k8s.io/v2"))).reason


def test_binary_garbage_is_refused_line_by_line() -> None:
    events, rejected = decode(b"\x00\x01 not json\n" + dumps(HEALTHZ_EVENT) + b"\n\xff\xfe\n")
    assert len(events) == 1
    assert [item.line for item in rejected] == [1, 3]


def test_a_json_scalar_is_not_an_event() -> None:
    assert refusal(b"42\n").line == 1


def _nested(depth: int) -> bytes:
    return dumps(HEALTHZ_EVENT)[:-1] + b',"requestObject":' + b"[" * depth + b"]" * depth + b"}"


def test_bodies_as_deep_as_the_apiserver_accepts_are_kept() -> None:
    """kube-apiserver's decoder accepts 10,000 levels; such an event is a real event."""
    events, rejected = decode(_nested(MAX_NESTING - 5) + b"\n")
    assert rejected == [] and len(bytes(events[0].requestObject)) == 2 * (MAX_NESTING - 5)


def test_deeper_bodies_are_refused_one_by_one_not_a_crash() -> None:
    events, rejected = decode(dumps(FULL_EVENT) + b"\n" + _nested(50_000) + b"\n" + dumps(HEALTHZ_EVENT))
    assert len(events) == 2
    assert rejected[0].line == 2 and "nested" in rejected[0].reason


@pytest.mark.parametrize("wrap", ["event-list", "array"])
def test_a_too_deep_item_costs_only_itself_in_a_batch(wrap: str) -> None:
    items = [dumps(FULL_EVENT), _nested(50_000), dumps(HEALTHZ_EVENT)]
    body = b"[" + b",".join(items) + b"]"
    if wrap == "event-list":
        body = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":' + body + b"}"
    events, rejected = decode(body)
    assert [event.auditID for event in events] == [FULL_EVENT["auditID"], HEALTHZ_EVENT["auditID"]]
    (item,) = rejected
    assert "nested" in item.reason and ("items[1]" in item.reason or "item 1" in item.reason)


def test_truncated_gzip_keeps_the_events_before_the_damage() -> None:
    line = dumps(FULL_EVENT) + b"\n"
    data = gzip.compress(line * 2000)
    events, rejected = decode(data[: len(data) // 2], source="audit.log.gz")
    assert 0 < len(events) < 2000
    assert "gzip" in rejected[-1].reason and "truncated" in rejected[-1].reason


def test_gzip_with_only_a_header_is_unusable_input(tmp_path: Path) -> None:
    path = tmp_path / "cut.log.gz"
    path.write_bytes(gzip.compress(b"{}")[:12])
    with pytest.raises(IntakeError) as caught:
        list(read_events(path))
    assert str(path) in str(caught.value) and "gzip" in str(caught.value)


def test_input_of_unknown_format_is_unusable(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\nworld\n")
    with pytest.raises(IntakeError) as caught:
        list(read_events(path))
    assert "--format" in caught.value.hint


@pytest.mark.parametrize("bad_line", [1500, 2999, 3000])
def test_error_deep_in_a_large_file_names_its_line(bad_line: int) -> None:
    line = dumps(FULL_EVENT)
    bad = dumps(dict(FULL_EVENT, user={"username": ["jane"]}))
    data = b"\n".join(bad if number == bad_line else line for number in range(1, 3001)) + b"\n"
    events, rejected = decode(data)
    assert len(events) == 2999
    (item,) = rejected
    assert item.line == bad_line and "`$.user.username`" in item.reason


def test_unusual_lines_deep_in_a_large_file_decode_like_any_other() -> None:
    line = dumps(FULL_EVENT)
    special = {
        1200: dumps(V1BETA1_EVENT),
        1300: dumps(event_list([HEALTHZ_EVENT, HEALTHZ_EVENT])),
        1400: b"",
        1401: b"   \r",
        2999: dumps({key: value for key, value in HEALTHZ_EVENT.items() if key not in ("kind", "apiVersion")}),
    }
    data = b"\n".join(special.get(number, line) for number in range(1, 3001)) + b"\n"
    assert len(data) > 20 * 65536
    events, rejected = decode(data)
    assert rejected == []
    assert len(events) == 3000 - 2 + 1
    assert events[1199].auditID == V1BETA1_EVENT["auditID"]
    assert meaning([events[1199]]) == [as_v1(V1BETA1_EVENT)]


def test_a_line_longer_than_a_read() -> None:
    huge = dict(FULL_EVENT, requestObject={"data": {"blob": "x" * 300_000}})
    events, _ = decode(dumps(HEALTHZ_EVENT) + b"\n" + dumps(huge) + b"\n" + dumps(HEALTHZ_EVENT))
    assert len(events) == 3
    assert json.loads(bytes(events[1].requestObject)) == huge["requestObject"]


def test_stdin_style_stream_without_a_name() -> None:
    events = [event for batch in read_stream(io.BytesIO(LAYOUTS["ndjson"]), source="stdin") for event in batch.events]
    assert events == expected()
