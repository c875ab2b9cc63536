"""Round-trip properties: encode → decode keeps every field; lossless decoding keeps unknown top-level
fields; request and response bodies keep their meaning; every layout carries the same events."""

from __future__ import annotations

import gzip
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubetrail.intake import read_bytes
from kubetrail.model import (
    decode_event,
    decode_event_lossless,
    encode_event,
    encode_event_list,
    encode_ndjson,
    format_microtime,
)
from kubetrail.model.codec import KNOWN_EVENT_KEYS

words = st.text(min_size=1, max_size=20)
word_lists = st.lists(words, min_size=1, max_size=4)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
microtimes = st.datetimes().map(format_microtime)


def optional(strategies: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects whose fields are each present or absent; present fields are never empty (Go's omitempty)."""
    return st.fixed_dictionaries({}, optional=strategies)


user_infos = optional(
    {
        "username": words,
        "uid": words,
        "groups": word_lists,
        "extra": st.dictionaries(words, st.lists(words, max_size=3), min_size=1, max_size=3),
    }
)
object_refs = optional(
    {
        name: words
        for name in (
            "resource",
            "namespace",
            "name",
            "uid",
            "apiGroup",
            "apiVersion",
            "resourceVersion",
            "subresource",
        )
    }
)
statuses = optional(
    {
        "metadata": st.just({}) | st.fixed_dictionaries({"resourceVersion": words}),
        "status": st.sampled_from(["Success", "Failure"]),
        "message": words,
        "reason": st.sampled_from(["Forbidden", "NotFound", "Conflict", "Invalid"]),
        "details": st.dictionaries(st.sampled_from(["name", "kind", "group"]), words, min_size=1),
        "code": st.integers(min_value=100, max_value=599),
    }
)
events = st.fixed_dictionaries(
    {
        "kind": st.just("Event"),
        "apiVersion": st.just("audit.k8s.io/v1"),
        "level": st.sampled_from(["None", "Metadata", "Request", "RequestResponse"]),
        "auditID": st.uuids().map(str),
        "stage": st.sampled_from(["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"]),
        "requestURI": words,
        "verb": st.sampled_from(["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]),
        "user": user_infos,
    },
    optional={
        "impersonatedUser": user_infos,
        "sourceIPs": st.lists(st.ip_addresses().map(str), min_size=1, max_size=3),
        "userAgent": words,
        "objectRef": object_refs,
        "responseStatus": statuses,
        "requestObject": json_values,
        "responseObject": json_values,
        "requestReceivedTimestamp": microtimes,
        "stageTimestamp": microtimes,
        "annotations": st.dictionaries(words, st.text(max_size=40), min_size=1, max_size=4),
    },
)
unknown_fields = st.dictionaries(
    words.filter(lambda key: key not in KNOWN_EVENT_KEYS and key not in ("timestamp", "metadata")),
    json_values,
    max_size=3,
)


def dumps(value: Any, **options: Any) -> bytes:
    return json.dumps(value, **options).encode()


@settings(deadline=None)
@given(events)
def test_encode_decode_keeps_every_field(event: dict[str, Any]) -> None:
    decoded = decode_event(dumps(event))
    assert json.loads(encode_event(decoded)) == event
    assert decode_event(encode_event(decoded)) == decoded


@settings(deadline=None)
@given(events, unknown_fields)
def test_lossless_decoding_keeps_unknown_fields(event: dict[str, Any], unknown: dict[str, Any]) -> None:
    document = {**event, **unknown}
    lossless = decode_event_lossless(dumps(document))
    assert set(lossless.unknown) == set(unknown)
    assert json.loads(encode_event(lossless.event, lossless.unknown)) == document


@settings(deadline=None)
@given(events, st.sampled_from([None, 1, 2, 4]))
def test_bodies_keep_their_meaning_whatever_the_layout(event: dict[str, Any], indent: int | None) -> None:
    decoded = decode_event(dumps(event, indent=indent))
    for body in ("requestObject", "responseObject"):
        if body in event:
            assert json.loads(bytes(getattr(decoded, body))) == event[body]
        else:
            assert bytes(getattr(decoded, body)) == b""


@settings(max_examples=50, deadline=None)
@given(st.lists(events, min_size=1, max_size=6))
def test_every_layout_carries_the_same_events(batch: list[dict[str, Any]]) -> None:
    decoded = [decode_event(dumps(event)) for event in batch]
    layouts = [
        encode_ndjson(decoded),
        encode_event_list(decoded),
        dumps(batch),
        dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": batch}, indent=2),
        gzip.compress(encode_ndjson(decoded)),
    ]
    for data in layouts:
        decoded_again = [item for part in read_bytes(data) for item in part.events]
        assert [json.loads(encode_event(item)) for item in decoded_again] == batch


@settings(deadline=None)
@given(events)
def test_v1beta1_becomes_v1_without_its_own_fields(event: dict[str, Any]) -> None:
    old = {**event, "apiVersion": "audit.k8s.io/v1beta1", "timestamp": "2019-01-01T00:00:00Z", "metadata": {}}
    assert json.loads(encode_event(decode_event(dumps(old)))) == event
    lossless = decode_event_lossless(dumps(old))
    assert json.loads(encode_event(lossless.event, lossless.unknown)) == event
