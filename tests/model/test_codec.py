"""The event codec: one event or document, v1beta1 handling, faithful encoding and named decode errors.

Whole inputs (NDJSON, arrays, gzip, exports) are the intake's: tests/intake/test_native.py."""

from __future__ import annotations

import json
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
    encode_event,
    encode_event_list,
    encode_ndjson,
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
    assert decode_document(dumps(bare)) == [decode_event(dumps(HEALTHZ_EVENT))]


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


def test_decode_document_returns_list_items() -> None:
    assert decode_document(dumps(event_list(EVENTS))) == [decode_event(dumps(event)) for event in EVENTS]
    assert decode_document(dumps(HEALTHZ_EVENT)) == [decode_event(dumps(HEALTHZ_EVENT))]


def test_encode_event_list_is_a_webhook_body() -> None:
    events = [decode_event(dumps(event)) for event in EVENTS]
    body = parsed(encode_event_list(events))
    assert body["kind"] == "EventList"
    assert body["apiVersion"] == "audit.k8s.io/v1"
    assert [item["auditID"] for item in body["items"]] == [event["auditID"] for event in EVENTS]
    assert decode_document(encode_event_list(events)) == events


def test_encode_ndjson_is_one_event_per_line() -> None:
    events = [decode_event(dumps(event)) for event in EVENTS]
    data = encode_ndjson(events)
    lines = data.split(b"\n")
    assert lines[-1] == b""
    assert [parsed(line) for line in lines[:-1]] == [as_v1(event) for event in EVENTS]


def test_decode_error_is_a_kubetrail_error() -> None:
    from kubetrail.errors import KubetrailError

    assert issubclass(EventDecodeError, KubetrailError)
    with pytest.raises(KubetrailError):
        decode_event(b"{}")


def test_raw_bodies_survive_msgspec_round_trip() -> None:
    event = decode_event(dumps(FULL_EVENT))
    again = msgspec.json.decode(encode_event(event), type=Event)
    assert again == event


def test_invalid_utf8_is_a_decode_error_naming_the_line() -> None:
    line = (
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a",'
        b'"stage":"ResponseComplete","requestURI":"/x\xff","verb":"get","user":{"username":"u"}}'
    )
    for decode in (decode_event, decode_document):
        with pytest.raises(EventDecodeError) as caught:
            decode(line, source="audit.log", line=7)
        assert caught.value.line == 7 and "UTF-8" in caught.value.message


def test_deep_nesting_is_a_decode_error_not_a_crash() -> None:
    deep = dumps(HEALTHZ_EVENT)[:-1] + b',"requestObject":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(EventDecodeError) as caught:
        decode_event(deep, source="audit.log", line=3)
    assert caught.value.line == 3 and "nested" in caught.value.message
