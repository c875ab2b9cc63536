"""The AKS Event Hub source, tested up to the wire: no Event Hubs server installs here (Microsoft's emulator is a
Docker image, and this machine runs no Docker engine), so the events are real azure-eventhub EventData objects
decoded by the SDK's own AMQP decoder from message payloads encoded by its encoder, with the annotations Event
Hubs sets (offset, sequence number, enqueued time); the partition contexts are the SDK's, checkpointing through
our CheckpointStore; the SDK's rule for where a partition resumes is run on what we saved; and the real
EventHubConsumerClient is started against a loopback port where nothing answers, to see its errors reported.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetrail.intake import Batch
from kubetrail.pipeline import Outcome, Pipeline
from kubetrail.sources.aks_eventhub import TYPE, AksEventHubSource, FileCheckpointStore, Position, parse_spec
from kubetrail.sources.checkpoint import SourceCheckpoints
from kubetrail.sources.config import Entry
from kubetrail.store import Store
from tests.intake.shapes import aks_record
from tests.serve.helpers import audit_event, audit_ids
from tests.sources.servers import wire_event

pytest.importorskip("azure.eventhub", reason="the azure extra (azure-eventhub) is not installed")

NAMESPACE = "kubetrail-test.servicebus.windows.net"
HUB = "aks-audit"
VARIABLE = "KUBETRAIL_TEST_EVENTHUB"
SECRET = "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ=="


def message(events: list[dict[str, Any]], **record: Any) -> bytes:
    """A diagnostic setting's Event Hub message: `{"records": [...]}`."""
    return json.dumps({"records": [{**aks_record(event), **record} for event in events]}).encode()


def batch_of(prefix: str, messages: int, per_message: int, *, first_offset: int = 0) -> list[Any]:
    now = int(time.time() * 1000) - 2000
    made = []
    for index in range(messages):
        events = [audit_event(index * per_message + n, prefix=prefix) for n in range(per_message)]
        made.append(wire_event(message(events), first_offset + index * 1024, first_offset + index, now + index))
    return made


class Harness:
    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(
            VARIABLE, f"Endpoint=sb://{NAMESPACE}/;SharedAccessKeyName=listen;SharedAccessKey={SECRET};EntityPath={HUB}"
        )
        self.folder = folder
        self.store = Store.open(folder / "store")
        self.checkpoints = SourceCheckpoints(folder / "store" / "checkpoints")

    def source(self, pipeline: Pipeline | None = None, **settings: Any) -> AksEventHubSource:
        values = {"type": TYPE, "eventhub": HUB, "connection-string-env": VARIABLE, **settings}
        spec = parse_spec(Entry(values, "test.yaml", "sources[0]", "default"))
        opened = spec.open(pipeline or Pipeline(self.store), self.checkpoints)
        return opened

    def context(self, source: AksEventHubSource, partition: str = "0") -> Any:
        from azure.eventhub._eventprocessor.partition_context import PartitionContext

        return PartitionContext(NAMESPACE, HUB, "$Default", partition, source.store)  # type: ignore[arg-type]


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    made = Harness(tmp_path, monkeypatch)
    yield made
    made.store.close()


def test_a_batch_is_stored_then_checkpointed_where_the_sdk_resumes(harness: Harness) -> None:
    from azure.eventhub._eventprocessor._eventprocessor_mixin import EventProcessorMixin

    source = harness.source()
    first, second = batch_of("eh", 4, 25), batch_of("eh2", 2, 10, first_offset=8192)
    source.on_event_batch(harness.context(source, "0"), first)
    source.on_event_batch(harness.context(source, "3"), second)
    source.on_event_batch(harness.context(source, "3"), [])  # max-wait passed with nothing: nothing happens
    assert source.stats.events == 120 and 0 < source.stats.lag_seconds < 60
    source.client.close()

    restarted = harness.source()  # a restart: the checkpoints come back from the file
    listed = {item["partition_id"]: item for item in restarted.store.list_checkpoints(NAMESPACE, HUB, "$Default")}
    assert {key: (item["offset"], item["sequence_number"]) for key, item in listed.items()} == {
        "0": (str(3 * 1024), 3),
        "3": (str(8192 + 1024), 8193),
    }

    class Processor(EventProcessorMixin):
        _initial_event_position = "-1"
        _initial_event_position_inclusive = False

    assert Processor().get_init_event_position("0", listed["0"]) == ("3072", False)  # after the last one stored
    assert Processor().get_init_event_position("1", None) == ("-1", False)  # never read: `from: start`
    restarted.client.close()
    harness.store.close()
    assert len(audit_ids(harness.folder / "store")) == 120
    harness.store = Store.open(harness.folder / "store")


class FailingOnce(Pipeline):
    failures = 1

    def accept(self, batch: Batch, cluster: str | None = None, *, source: str = "") -> Outcome:
        if self.failures:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        return super().accept(batch, cluster, source=source)


def test_a_batch_that_could_not_be_stored_is_not_checkpointed(harness: Harness) -> None:
    source = harness.source(FailingOnce(harness.store))
    events = batch_of("fail", 3, 5)
    context = harness.context(source)
    with pytest.raises(OSError):
        source.on_event_batch(context, events)
    assert source.store.list_checkpoints(NAMESPACE, HUB, "$Default") == []
    source.on_error(context, OSError(28, "No space left on device"))  # what the SDK then calls
    assert source.stats.errors == 1 and "partition 0" in source.stats.last_error
    source.on_event_batch(context, events)  # the SDK reads the partition again from its checkpoint
    assert source.stats.events == 15 and source.stats.consecutive_failures == 0
    saved = harness.checkpoints.load(TYPE, source.spec.checkpoint_key, Position)
    assert saved is not None and saved.partitions["0"].offset == "2048"
    source.client.close()


def test_other_categories_are_skipped_a_bad_message_is_refused_and_the_cluster_comes_from_the_records(
    harness: Harness,
) -> None:
    source = harness.source()
    events = [
        wire_event(message([audit_event(1, prefix="mix")]), 0, 0, 1),
        wire_event(b"not json", 100, 1, 2),
        wire_event(message([audit_event(2, prefix="mix")], category="kube-apiserver"), 200, 2, 3),
        wire_event(message([audit_event(3, prefix="mix")], category="kube-audit-admin"), 300, 3, 4),
    ]
    source.on_event_batch(harness.context(source), events)
    assert (source.stats.events, source.stats.rejected, source.stats.skipped) == (2, 1, 1)
    rows = harness.store.query_connection().execute("select distinct cluster from events").fetchall()
    assert rows == [("aks-prod",)]
    assert harness.store.dead_letters.count == 1
    source.client.close()


def test_the_real_client_reports_a_hub_it_cannot_reach_and_stops(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.eventhub import EventHubConsumerClient

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    text = (
        f"Endpoint=sb://127.0.0.1:{port}/;SharedAccessKeyName=listen;SharedAccessKey={SECRET};"
        f"EntityPath={HUB};UseDevelopmentEmulator=true"
    )
    values = {"type": TYPE, "eventhub": HUB, "connection-string-env": VARIABLE}
    spec = parse_spec(Entry(values, "test.yaml", "sources[0]", "default"))
    store = FileCheckpointStore(harness.checkpoints, key=spec.checkpoint_key)
    client = EventHubConsumerClient.from_connection_string(
        text, consumer_group="$Default", checkpoint_store=store, retry_total=0, load_balancing_interval=0.2
    )
    source = AksEventHubSource(spec, Pipeline(harness.store), store, client=client)
    source.start()
    deadline = time.monotonic() + 30
    while source.stats.consecutive_failures < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    source.stop()
    assert time.monotonic() - started < 30
    assert source.stats.consecutive_failures >= 2, source.stats
    assert SECRET not in source.stats.last_error and "listen" not in source.stats.last_error.lower().split(":")[0]
