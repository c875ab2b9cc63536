"""A Cloud Logging sink's Pub/Sub messages (pushed or pulled) become the same events as the entries read from a
file: `decode_push` reads the push envelope, `decode_messages` converts each message's LogEntry alone."""

from __future__ import annotations

import base64
import json

import msgspec
import pytest

from kubetrail.intake import IntakeError, read_bytes
from kubetrail.intake.gke import NOT_K8S, decode_messages, decode_push
from tests.intake.shapes import log_entry
from tests.serve.helpers import audit_event
from tests.sources.servers import push_body


def entries(count: int, prefix: str = "ps") -> list[dict[str, object]]:
    made = []
    for number in range(count):
        event = audit_event(number, prefix=prefix)
        if number % 3 == 1:
            event["objectRef"] = {"resource": "clusterroles", "name": "admin", "apiGroup": "rbac.authorization.k8s.io",
                                  "apiVersion": "v1"}  # fmt: skip
            event["verb"] = "create"
        if number % 3 == 2:
            event["objectRef"] = {**event["objectRef"], "subresource": "exec"}
            event["verb"] = "create"
        made.append(log_entry(event))
    return made


def test_messages_give_the_events_reading_the_entries_from_a_file_gives() -> None:
    made = entries(9)
    from_file = [
        msgspec.json.encode(event)
        for batch in read_bytes(json.dumps(made).encode(), source="f", format="gke")
        for event in batch.events
    ]
    batches = decode_messages([(str(index), json.dumps(entry).encode()) for index, entry in enumerate(made)], "sub")
    assert [batch.cluster for batch in batches] == ["gke-prod"]
    assert [msgspec.json.encode(event) for event in batches[0].events] == from_file
    assert len(from_file) == 12  # a granted exec is two events


def test_a_message_that_is_not_a_log_entry_is_refused_alone_and_other_entries_are_skipped() -> None:
    other = {"protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog", "serviceName": "iam"}}
    messages = [
        ("m1", json.dumps(entries(1)[0]).encode()),
        ("m2", b"not json {"),
        ("m3", json.dumps(other).encode()),
        ("m4", json.dumps(entries(1, "b")[0]).encode()),
    ]
    batches = decode_messages(messages, "pubsub sub")
    by_cluster = {batch.cluster: batch for batch in batches}
    assert len(by_cluster["gke-prod"].events) == 2
    refused = by_cluster[None]
    assert [item.source for item in refused.rejected] == ["pubsub sub message m2"]
    assert refused.rejected[0].raw == b"not json {" and refused.skipped[NOT_K8S] == 1


def test_the_push_envelope_in_both_spellings_and_without_the_wrapper() -> None:
    entry = entries(1)[0]
    message = decode_push(push_body(entry, "1234567890", "projects/p/subscriptions/s"), source="push")
    assert (message.message_id, message.subscription) == ("1234567890", "projects/p/subscriptions/s")
    assert json.loads(message.data) == entry and message.publish_time == "2026-03-19T10:00:00.123Z"
    assert message.attributes == {"logging.googleapis.com/timestamp": entry["timestamp"]}
    snake = {"message": {"data": base64.b64encode(b"{}").decode(), "message_id": "7", "publish_time": "t"}}
    assert decode_push(json.dumps(snake).encode(), source="push").message_id == "7"
    unwrapped = decode_push(json.dumps(entry).encode(), source="push")
    assert unwrapped.data == json.dumps(entry).encode() and unwrapped.message_id == ""


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a Pub/Sub push envelope"),
        (b'{"subscription": "s"}', "no `message` object"),
        (b'{"message": {"data": "***"}}', "not base64"),
        (b'{"message": {"data": 5}}', "not base64"),
    ],
)
def test_a_body_that_is_no_envelope_is_an_intake_error(body: bytes, words: str) -> None:
    with pytest.raises(IntakeError, match=words):
        decode_push(body, source="push")
