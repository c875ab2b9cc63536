"""The event codec: every accepted layout, v1beta1 handling, faithful encoding and named decode errors."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kubetrail.model import (
    Event,
    EventDecodeError,
    Level,
    Stage,
    decode_document,
    decode_event,
    decode_event_lossless,
    decode_events,
    encode_event,
    encode_event_list,
    encode_ndjson,
    iter_events,
    read_events,
)
from tests.model.events import FULL_EVENT, HEALTHZ_EVENT, V1BETA1_EVENT, as_v1, dumps

EVENTS = [FULL_EVENT, HEALTHZ_EVENT, V1BETA1_EVENT]


def parsed(data: bytes | msgspec.Raw) -> Any:
    return json.loads(bytes(data))


def meaning(events: list[Event]) -> list[Any]:
    """Events as parsed JSON: equal when they mean the same, whatever the bodies' whitespace."""
    return [parsed(encode_event(event)) for event in events]


def event_list(items: list[dict[str, Any]], version: str = "audit.k8s.io/v1") -> dict[str, Any]:
    return {"kind": "EventList", "apiVersion": version, "metadata": {}, "items": items}


def test_single_event_decodes_every_field() -> None:
    event = decode_event(dumps(FULL_EVENT))
    assert event.level is Level.REQUEST_RESPONSE
    assert event.stage is Stage.RESPONSE_COMPLETE
    assert event.user.username == "jane@example.com"
    assert event.user.extra == {"scopes.example.com/team": ["payments", "oncall"]}
    assert event.impersonatedUser is not None
    assert event.impersonatedUser.username == "system:serviceaccount:payments:deployer"
    assert event.sourceIPs == ["10.0.12.7", "2001:db8::7"]
    assert event.objectRef is not None and event.objectRef.resourceVersion == "48213"
    assert event.responseStatus is not None and event.responseStatus.code == 201
    assert parsed(event.requestObject) == FULL_EVENT["requestObject"]
    assert parsed(event.responseObject) == FULL_EVENT["responseObject"]
    assert event.annotations["authorization.k8s.io/decision"] == "allow"
    assert event.is_resource_request
    assert event.path == "/api/v1/namespaces/payments/pods"


def test_non_resource_event() -> None:
    event = decode_event(dumps(HEALTHZ_EVENT))
    assert event.objectRef is None
    assert not event.is_resource_request
    assert event.path == "/healthz"
    assert bytes(event.requestObject) == b""


def test_v1beta1_event_is_read_as_v1() -> None:
    event = decode_event(dumps(V1BETA1_EVENT))
    assert event.apiVersion == "audit.k8s.io/v1"
    assert parsed(encode_event(event)) == as_v1(V1BETA1_EVENT)


def test_event_without_api_version_is_v1() -> None:
    bare = {key: value for key, value in HEALTHZ_EVENT.items() if key != "apiVersion"}
    assert decode_event(dumps(bare)).apiVersion == "audit.k8s.io/v1"


def test_event_without_kind_is_an_event() -> None:
    """Webhook EventList items and `jq .items[]` output carry no kind."""
    bare = {key: value for key, value in HEALTHZ_EVENT.items() if key != "kind"}
    assert decode_events(dumps(bare)) == [decode_event(dumps(HEALTHZ_EVENT))]


@pytest.mark.parametrize("event", EVENTS, ids=["full", "healthz", "v1beta1"])
def test_encoding_is_the_v1_wire_format(event: dict[str, Any]) -> None:
    encoded = encode_event(decode_event(dumps(event)))
    assert parsed(encoded) == as_v1(event)
    assert encoded.startswith(b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":')
    assert b" " not in encoded.split(b'"requestURI"')[0]


def test_encoded_fields_follow_the_apiservers_order() -> None:
    keys = list(json.loads(encode_event(decode_event(dumps(FULL_EVENT)))))
    assert keys == [
        "kind",
        "apiVersion",
        "level",
        "auditID",
        "stage",
        "requestURI",
        "verb",
        "user",
        "impersonatedUser",
        "sourceIPs",
        "userAgent",
        "objectRef",
        "responseStatus",
        "requestObject",
        "responseObject",
        "requestReceivedTimestamp",
        "stageTimestamp",
        "annotations",
    ]


def test_response_status_metadata_is_kept_as_written() -> None:
    with_metadata = decode_event(dumps(FULL_EVENT))
    assert parsed(encode_event(with_metadata))["responseStatus"] == {"metadata": {}, "code": 201}
    without = dict(FULL_EVENT, responseStatus={"code": 403, "status": "Failure", "reason": "Forbidden"})
    assert parsed(encode_event(decode_event(dumps(without))))["responseStatus"] == without["responseStatus"]


def test_request_bodies_are_kept_byte_for_byte() -> None:
    body = b'{"kind":"Secret","data":{"k":"dmFsdWU="},"z":1.50,"a":[]}'
    text = dumps(HEALTHZ_EVENT)[:-1] + b',"requestObject":' + body + b"}"
    event = decode_event(text)
    assert bytes(event.requestObject) == body
    assert body in encode_event(event)


def test_lossless_decoding_keeps_unknown_top_level_fields() -> None:
    extra = dict(FULL_EVENT, cluster="prod-eu-1", futureField={"nested": [1, 2, {"x": None}]})
    lossless = decode_event_lossless(dumps(extra))
    assert sorted(lossless.unknown) == ["cluster", "futureField"]
    assert parsed(encode_event(lossless.event, lossless.unknown)) == extra


def test_lossless_decoding_drops_only_v1beta1_fields() -> None:
    lossless = decode_event_lossless(dumps(V1BETA1_EVENT))
    assert lossless.unknown == {}
    assert parsed(encode_event(lossless.event, lossless.unknown)) == as_v1(V1BETA1_EVENT)


def test_plain_decoding_ignores_unknown_fields() -> None:
    event = decode_event(dumps(dict(HEALTHZ_EVENT, cluster="prod")))
    assert parsed(encode_event(event)) == HEALTHZ_EVENT


# ---- layouts ------------------------------------------------------------------------------------------------


def expected_events() -> list[Event]:
    return [decode_event(dumps(event)) for event in EVENTS]


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
    events = decode_events(data)
    assert meaning(events) == meaning(expected_events())
    assert all(event.apiVersion == "audit.k8s.io/v1" for event in events)


@pytest.mark.parametrize("data", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_gzip_of_any_layout_is_found_by_magic(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "audit.log.1"
    path.write_bytes(gzip.compress(data))
    assert meaning(list(read_events(path))) == meaning(expected_events())


def test_pretty_printed_single_event() -> None:
    assert meaning(decode_events(dumps(FULL_EVENT, indent=2))) == meaning(expected_events()[:1])


def test_decode_document_returns_list_items() -> None:
    assert decode_document(dumps(event_list(EVENTS))) == expected_events()
    assert decode_document(dumps(HEALTHZ_EVENT)) == expected_events()[1:2]


def test_iter_events_reads_a_non_seekable_buffered_stream(tmp_path: Path) -> None:
    path = tmp_path / "audit.log.gz"
    path.write_bytes(gzip.compress(LAYOUTS["ndjson"]))
    with open(path, "rb") as handle:
        assert list(iter_events(handle)) == expected_events()


def test_empty_input_has_no_events(tmp_path: Path) -> None:
    assert decode_events(b"") == []
    assert decode_events(b"\n \n\t\n") == []
    (tmp_path / "empty.log").write_bytes(b"")
    assert list(read_events(tmp_path / "empty.log")) == []
    assert decode_events(gzip.compress(b"")) == []


def test_large_ndjson_streams_across_read_chunks() -> None:
    line = dumps(FULL_EVENT)
    count = (5 << 20) // len(line) + 3
    events = list(iter_events(io.BytesIO((line + b"\n") * count)))
    assert len(events) == count
    assert events[-1] == events[0]


def test_encode_event_list_is_a_webhook_body() -> None:
    body = parsed(encode_event_list(expected_events()))
    assert body["kind"] == "EventList"
    assert body["apiVersion"] == "audit.k8s.io/v1"
    assert [item["auditID"] for item in body["items"]] == [event["auditID"] for event in EVENTS]
    assert decode_events(encode_event_list(expected_events())) == expected_events()


def test_encode_ndjson_is_one_event_per_line() -> None:
    data = encode_ndjson(expected_events())
    lines = data.split(b"\n")
    assert lines[-1] == b""
    assert [parsed(line) for line in lines[:-1]] == [as_v1(event) for event in EVENTS]
    assert decode_events(data) == expected_events()


# ---- the real corpus -----------------------------------------------------------------------------------------


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(path for path in (corpus / "falco" / "events").glob("*.json") if path.name != "fal_01_003.json")


def originals(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    try:
        return [json.loads(line) for line in data.splitlines() if line.strip()]
    except json.JSONDecodeError:
        return [json.loads(data)]


def test_falco_corpus_event_counts(corpus: Path) -> None:
    expected = json.loads((corpus / "falco" / "EXPECTED.json").read_text())["files"]
    for path in corpus_files(corpus):
        assert len(list(read_events(path))) == expected[path.name]["events"], path.name


def test_falco_corpus_round_trips(corpus: Path) -> None:
    for path in corpus_files(corpus):
        for original, event in zip(originals(path), read_events(path), strict=True):
            assert parsed(encode_event(event)) == as_v1(original), path.name


def test_falco_corpus_v1beta1_events_become_v1(corpus: Path) -> None:
    path = corpus / "falco" / "events" / "anonymous_creates_namespace_foo.json"
    [original] = originals(path)
    assert original["apiVersion"] == "audit.k8s.io/v1beta1"
    [event] = read_events(path)
    assert event.apiVersion == "audit.k8s.io/v1"
    assert event.user.username == "system:anonymous"
    assert b'"timestamp"' not in encode_event(event)


def test_audit2rbac_log(corpus: Path) -> None:
    path = corpus / "audit2rbac" / "demo.log"
    events = list(read_events(path))
    assert len(events) == len(path.read_bytes().splitlines())
    assert all(event.impersonatedUser is not None for event in events[:2])
    assert {event.impersonatedUser.username for event in events if event.impersonatedUser} >= {"bob", "alice"}
    for original, event in zip(originals(path), events, strict=True):
        assert parsed(encode_event(event)) == as_v1(original)


def test_corpus_malformed_event_names_the_field_and_line(corpus: Path) -> None:
    path = corpus / "falco" / "events" / "fal_01_003.json"
    with pytest.raises(EventDecodeError) as caught:
        list(read_events(path))
    error = caught.value
    assert error.source == str(path)
    assert error.line == 1
    assert "`$.kind`" in error.message
    assert str(error).startswith(f"{path}:1: ")


# ---- malformed input -------------------------------------------------------------------------------------------


def decode_error(data: bytes) -> EventDecodeError:
    with pytest.raises(EventDecodeError) as caught:
        decode_events(data, source="audit.log")
    assert caught.value.source == "audit.log"
    assert isinstance(caught.value, ValueError)
    return caught.value


def test_bad_field_on_a_later_ndjson_line() -> None:
    bad = dict(HEALTHZ_EVENT, user={"username": 42})
    error = decode_error(dumps(FULL_EVENT) + b"\n\n" + dumps(bad) + b"\n")
    assert error.line == 3
    assert "`$.user.username`" in error.message
    assert str(error).startswith("audit.log:3: ")


def test_bad_field_on_the_first_line() -> None:
    error = decode_error(dumps(dict(FULL_EVENT, level="Everything")) + b"\n" + dumps(HEALTHZ_EVENT))
    assert error.line == 1
    assert "`$.level`" in error.message


def test_missing_required_field_is_named() -> None:
    incomplete = {key: value for key, value in HEALTHZ_EVENT.items() if key != "auditID"}
    error = decode_error(dumps(HEALTHZ_EVENT) + b"\n" + dumps(incomplete))
    assert error.line == 2
    assert "auditID" in error.message


def test_bad_stage_in_an_event_list_names_the_item() -> None:
    error = decode_error(dumps(event_list([HEALTHZ_EVENT, dict(HEALTHZ_EVENT, stage="Done")])))
    assert "`$.items[1].stage`" in error.message


def test_malformed_json_line() -> None:
    error = decode_error(dumps(HEALTHZ_EVENT) + b"\n" + dumps(HEALTHZ_EVENT)[:-5] + b"\n" + dumps(HEALTHZ_EVENT))
    assert error.line == 2


def test_malformed_pretty_printed_document_names_its_line() -> None:
    text = dumps(FULL_EVENT, indent=2).replace(b'"verb": "create"', b'"verb": create')
    error = decode_error(text)
    assert error.line == text[: text.index(b": create")].count(b"\n") + 1


def test_wrong_kind() -> None:
    error = decode_error(b'{"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "web"}}\n')
    assert "`$.kind`" in error.message
    assert "Event or EventList" in error.message


@pytest.mark.parametrize("version", ["audit.k8s.io/v2", "audit.k8s.io/v1alpha1", "v1"])
def test_unknown_api_version(version: str) -> None:
    error = decode_error(dumps(HEALTHZ_EVENT) + b"\n" + dumps(dict(HEALTHZ_EVENT, apiVersion=version)))
    assert error.line == 2
    assert version in error.message
    assert "`$.apiVersion`" in error.message


def test_unknown_api_version_of_an_event_list() -> None:
    error = decode_error(dumps(event_list([HEALTHZ_EVENT], "audit.k8s.io/v2")))
    assert "audit.k8s.io/v2" in error.message


def test_binary_garbage() -> None:
    error = decode_error(bytes(range(256)) * 8)
    assert error.line == 1


def test_truncated_gzip_keeps_the_events_before_the_damage() -> None:
    line = dumps(FULL_EVENT) + b"\n"
    data = gzip.compress(line * 2000)
    cut = data[: len(data) // 2]
    decoded: list[Event] = []
    with pytest.raises(EventDecodeError) as caught:
        decoded.extend(iter_events(io.BytesIO(cut), source="audit.log.gz"))
    assert "gzip" in caught.value.message
    assert 0 < len(decoded) < 2000
    assert caught.value.line == len(decoded) + 1


def test_gzip_with_only_a_header_is_an_error() -> None:
    assert "gzip" in decode_error(gzip.compress(b"{}")[:12]).message


def test_a_json_scalar_is_not_an_event() -> None:
    assert decode_error(b"42\n").line == 1


def test_decode_error_is_a_kubetrail_error() -> None:
    from kubetrail.errors import KubetrailError

    assert issubclass(EventDecodeError, KubetrailError)
    with pytest.raises(KubetrailError):
        decode_event(b"{}")


def test_raw_bodies_survive_msgspec_round_trip() -> None:
    event = decode_event(dumps(FULL_EVENT))
    again = msgspec.json.decode(encode_event(event), type=Event)
    assert again == event


def big_ndjson(count: int, replace: dict[int, bytes]) -> bytes:
    """`count` lines (1-based numbering) of the full event, with some lines replaced."""
    line = dumps(FULL_EVENT)
    return b"\n".join(replace.get(number, line) for number in range(1, count + 1)) + b"\n"


def test_unusual_lines_deep_in_a_large_file_decode_like_any_other() -> None:
    data = big_ndjson(
        3000,
        {
            1200: dumps(V1BETA1_EVENT),
            1300: dumps(event_list([HEALTHZ_EVENT, HEALTHZ_EVENT])),
            1400: b"",
            1401: b"   \r",
            2999: dumps({key: value for key, value in HEALTHZ_EVENT.items() if key not in ("kind", "apiVersion")}),
        },
    )
    assert len(data) > 20 * 65536
    events = decode_events(data)
    assert len(events) == 3000 - 2 + 1
    assert all(event.apiVersion == "audit.k8s.io/v1" for event in events)
    assert [event.auditID for event in events[1198:1302]].count(HEALTHZ_EVENT["auditID"]) == 2
    assert events[1199].auditID == V1BETA1_EVENT["auditID"]


@pytest.mark.parametrize("bad_line", [1500, 2999, 3000])
def test_error_deep_in_a_large_file_names_its_line(bad_line: int) -> None:
    bad = dumps(dict(FULL_EVENT, user={"username": ["jane"]}))
    decoded: list[Event] = []
    with pytest.raises(EventDecodeError) as caught:
        decoded.extend(iter_events(io.BytesIO(big_ndjson(3000, {bad_line: bad})), source="audit.log"))
    assert caught.value.line == bad_line
    assert "`$.user.username`" in caught.value.message
    assert len(decoded) == bad_line - 1


def test_unknown_api_version_deep_in_a_large_file() -> None:
    data = big_ndjson(2000, {1777: dumps(dict(HEALTHZ_EVENT, apiVersion="audit.k8s.io/v2"))})
    with pytest.raises(EventDecodeError) as caught:
        decode_events(data)
    assert caught.value.line == 1777


def test_a_line_longer_than_a_read() -> None:
    huge = dict(FULL_EVENT, requestObject={"data": {"blob": "x" * 300_000}})
    data = dumps(HEALTHZ_EVENT) + b"\n" + dumps(huge) + b"\n" + dumps(HEALTHZ_EVENT)
    events = decode_events(data)
    assert len(events) == 3
    assert parsed(events[1].requestObject) == huge["requestObject"]


def test_pretty_printed_document_larger_than_a_read() -> None:
    items = [FULL_EVENT] * 200
    data = dumps(event_list(items), indent=2)
    assert len(data) > 4 * 65536
    assert len(decode_events(data)) == 200
    broken = data.replace(b'"verb": "create"', b'"verb": create', 1)
    with pytest.raises(EventDecodeError) as caught:
        decode_events(broken)
    assert caught.value.line == broken[: broken.index(b": create")].count(b"\n") + 1


def test_invalid_utf8_is_a_decode_error_naming_the_line() -> None:
    from kubetrail.model import EventDecodeError, decode_document, decode_event

    line = (
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a",'
        b'"stage":"ResponseComplete","requestURI":"/x\xff","verb":"get","user":{"username":"u"}}'
    )
    for decode in (decode_event, decode_document):
        with pytest.raises(EventDecodeError) as caught:
            decode(line, source="audit.log", line=7)
        assert caught.value.line == 7 and "UTF-8" in caught.value.message
