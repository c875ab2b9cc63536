"""The truncating wrapper: the apiserver's event-size and batch-size rules."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import msgspec
import pytest

from kubetrail.emit.backend import BackendError
from kubetrail.emit.truncate import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_EVENT_SIZE,
    TruncateConfig,
    Truncating,
    event_size,
)
from kubetrail.model.codec import encode_event
from kubetrail.model.event import Event, Level, ObjectReference, Stage, UserInfo

from .helpers_http import Receiver, serving


class Recorder:
    """A delegate that keeps every batch it is given and answers with a fixed result."""

    def __init__(self, result: bool = True) -> None:
        self.batches: list[list[Event]] = []
        self.result = result
        self.ran = self.stopped = False

    def process_events(self, events: Sequence[Event]) -> bool:
        self.batches.append(list(events))
        return self.result

    def run(self) -> None:
        self.ran = True

    def shutdown(self) -> None:
        self.stopped = True

    def name(self) -> str:
        return "recorder"


def body(size: int) -> msgspec.Raw:
    return msgspec.Raw(json.dumps({"kind": "ConfigMap", "data": {"blob": "x" * size}}).encode())


def event(n: int, level: Level = Level.REQUEST_RESPONSE, request: int = 0, response: int = 0) -> Event:
    return Event(
        level=level,
        auditID=f"id-{n}",
        stage=Stage.RESPONSE_COMPLETE,
        requestURI="/api/v1/namespaces/default/configmaps",
        verb="create",
        user=UserInfo(username="alice"),
        objectRef=ObjectReference(resource="configmaps", namespace="default", apiVersion="v1"),
        requestObject=body(request) if request else msgspec.Raw(),
        responseObject=body(response) if response else msgspec.Raw(),
        requestReceivedTimestamp="2026-03-19T10:30:00.000000Z",
        stageTimestamp="2026-03-19T10:30:00.050000Z",
        annotations={"authorization.k8s.io/decision": "allow"},
    )


def test_defaults_are_the_apiservers() -> None:
    assert DEFAULT_MAX_EVENT_SIZE == 102_400
    assert DEFAULT_MAX_BATCH_SIZE == 10_485_760
    assert TruncateConfig() == TruncateConfig(max_event_size=102_400, max_batch_size=10_485_760)


def test_size_counts_the_encoders_newline() -> None:
    sample = event(1)
    assert event_size(sample) == len(encode_event(sample)) + 1


def test_small_events_pass_unchanged_in_one_batch() -> None:
    delegate = Recorder()
    events = [event(n, request=100, response=100) for n in range(3)]
    assert Truncating(delegate).process_events(events) is True
    assert delegate.batches == [events]


def test_big_event_loses_bodies_and_is_annotated() -> None:
    delegate = Recorder()
    wrapper = Truncating(delegate)
    big = event(1, request=60_000, response=60_000)
    assert wrapper.process_events([big]) is True
    (sent,) = delegate.batches[0]
    assert not sent.requestObject and not sent.responseObject
    assert sent.annotations == {"authorization.k8s.io/decision": "allow", "audit.k8s.io/truncated": "true"}
    assert sent.auditID == big.auditID and sent.objectRef == big.objectRef
    wire = json.loads(encode_event(sent))
    assert "requestObject" not in wire and "responseObject" not in wire
    assert big.requestObject and "audit.k8s.io/truncated" not in big.annotations  # the caller's event is untouched
    assert wrapper.truncated == 1 and wrapper.dropped == 0


def test_event_exactly_at_the_limit_is_kept_whole() -> None:
    probe = event(1, request=1000)
    limit = event_size(probe)
    delegate = Recorder()
    Truncating(delegate, TruncateConfig(max_event_size=limit, max_batch_size=limit * 10)).process_events([probe])
    assert delegate.batches[0][0].requestObject == probe.requestObject
    delegate = Recorder()
    Truncating(delegate, TruncateConfig(max_event_size=limit - 1, max_batch_size=limit * 10)).process_events([probe])
    assert not delegate.batches[0][0].requestObject


def test_metadata_event_too_big_is_dropped_not_truncated(caplog: pytest.LogCaptureFixture) -> None:
    delegate = Recorder()
    wrapper = Truncating(delegate, TruncateConfig(max_event_size=1000, max_batch_size=10_000))
    huge = msgspec.structs.replace(event(1, level=Level.METADATA), annotations={"note": "y" * 2000})
    small = event(2, level=Level.METADATA)
    with caplog.at_level(logging.ERROR, logger="kubetrail.emit"):
        assert wrapper.process_events([huge, small]) is True  # a drop does not fail the call
    assert [e.auditID for batch in delegate.batches for e in batch] == ["id-2"]
    assert wrapper.dropped == 1
    message = caplog.records[-1].getMessage()
    assert "'truncate'" in message and "id-1" in message and "too large even after truncating" in message


def test_still_too_big_after_truncation_is_dropped() -> None:
    delegate = Recorder()
    wrapper = Truncating(delegate, TruncateConfig(max_event_size=400, max_batch_size=10_000))
    bloated = msgspec.structs.replace(event(1, request=5000), annotations={"note": "y" * 500})
    wrapper.process_events([bloated])
    assert delegate.batches == []
    assert (wrapper.truncated, wrapper.dropped) == (1, 1)


def test_batches_are_split_to_stay_within_max_batch_size() -> None:
    events = [event(n, request=1000) for n in range(10)]
    size = event_size(events[0])
    delegate = Recorder()
    wrapper = Truncating(delegate, TruncateConfig(max_event_size=size, max_batch_size=size * 3 + size // 2))
    assert wrapper.process_events(events) is True
    assert [len(batch) for batch in delegate.batches] == [3, 3, 3, 1]
    assert [e.auditID for batch in delegate.batches for e in batch] == [e.auditID for e in events]
    assert all(sum(event_size(e) for e in batch) <= size * 3 + size // 2 for batch in delegate.batches)


def test_delegate_failure_is_reported_and_every_batch_still_tried() -> None:
    events = [event(n, request=1000) for n in range(4)]
    size = event_size(events[0])
    delegate = Recorder(result=False)
    wrapper = Truncating(delegate, TruncateConfig(max_event_size=size, max_batch_size=size * 2))
    assert wrapper.process_events(events) is False
    assert [len(batch) for batch in delegate.batches] == [2, 2]


def test_run_shutdown_and_name_pass_through() -> None:
    delegate = Recorder()
    wrapper = Truncating(delegate)
    wrapper.run()
    wrapper.shutdown()
    assert delegate.ran and delegate.stopped
    assert wrapper.name() == "truncate<recorder>"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (TruncateConfig(max_event_size=0), "max event size 0, must be a positive number"),
        (TruncateConfig(max_event_size=100, max_batch_size=50), "max batch size 50, must be greater than"),
    ],
)
def test_invalid_limits_are_refused(config: TruncateConfig, message: str) -> None:
    with pytest.raises(BackendError, match=message):
        Truncating(Recorder(), config)


def test_truncated_events_reach_a_real_webhook_receiver() -> None:
    from kubetrail.emit.webhook import new_webhook_backend

    from .test_webhook import http_config

    receiver = Receiver()
    with serving(receiver.app) as live:
        composed = new_webhook_backend(
            http_config(live.url),
            mode="blocking-strict",
            truncate=TruncateConfig(max_event_size=4096, max_batch_size=3 * 4096),
        )
        composed.run()
        assert composed.process_events([event(n, request=5000 if n % 2 else 3000) for n in range(8)])
        composed.shutdown()
    items = receiver.items()
    assert [item["auditID"] for item in items] == [f"id-{n}" for n in range(8)]
    assert [item.get("annotations", {}).get("audit.k8s.io/truncated") for item in items] == [None, "true"] * 4
    assert all(len(json.dumps(batch)) < 3 * 4096 + 500 for batch in receiver.accepted)
    assert receiver.posts >= 2
