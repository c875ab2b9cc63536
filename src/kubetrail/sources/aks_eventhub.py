"""AKS, streamed: diagnostic settings' `kube-audit` / `kube-audit-admin` records read from an Event Hub with
azure-eventhub.

A diagnostic setting streaming to an Event Hub sends messages whose body is `{"records": [...]}` (the same
records as the storage archive's lines). The SDK's EventHubConsumerClient receives every partition in batches
(`receive_batch`); each batch is decoded by the intake's AKS reader (`intake.aks.decode_aks`), stored, and only
after the WAL fsync is the partition's checkpoint (the last event's offset and sequence number) written, through
the SDK's CheckpointStore interface, into `<store>/checkpoints/` with the same atomic, fsync'd replace as every
source. On start the SDK resumes each partition after its checkpoint; a partition never checkpointed starts
at `from` (`start`: the oldest event the hub retains; `end`: new events only).

When storing a batch fails the handler raises: the SDK reports it (counted, in /readyz after 5 in a row), closes
that partition's receiver and claims it again at its next load-balancing round, from the last checkpoint, so
the batch is read again. One serve per consumer group: ownership is kept in memory, not shared.

Credentials: a connection string from the environment variable named by `connection-string-env` (e.g. a
Listen-only shared access policy), else `namespace` with azure-identity's DefaultAzureCredential. Never logged.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from kubetrail.extras import require
from kubetrail.intake import Batch
from kubetrail.intake.aks import decode_aks
from kubetrail.pipeline import Pipeline
from kubetrail.sources.base import FAILING_AFTER, SourceStats, deliver
from kubetrail.sources.checkpoint import SourceCheckpoints
from kubetrail.sources.config import Entry, SourceConfigError

log = logging.getLogger(__name__)

TYPE = "aks-eventhub"
_KEYS = (
    "namespace",
    "eventhub",
    "consumer-group",
    "connection-string-env",
    "from",
    "max-batch",
    "max-wait",
)


@dataclass(frozen=True)
class AksEventHubSpec:
    """A configured `aks-eventhub` source."""

    name: str
    cluster: str | None
    eventhub: str
    namespace: str | None = None
    connection_env: str | None = None
    consumer_group: str = "$Default"
    from_start: bool = True
    max_batch: int = 300
    max_wait: float = 5.0
    type: str = TYPE

    def open(self, pipeline: Pipeline, checkpoints: SourceCheckpoints) -> AksEventHubSource:
        require("azure", f"the {TYPE} source", "azure.eventhub")
        store = FileCheckpointStore(checkpoints, key=self.checkpoint_key)
        return AksEventHubSource(self, pipeline, store, client=consumer_client(self, store))

    @property
    def checkpoint_key(self) -> str:
        return f"{self.namespace or self.connection_env} {self.eventhub} {self.consumer_group}"


def parse_spec(entry: Entry) -> AksEventHubSpec:
    """An `aks-eventhub` entry: `eventhub`, and `namespace` (DefaultAzureCredential) or a connection string's
    variable."""
    entry.check_keys(_KEYS)
    eventhub = entry.text("eventhub")
    if eventhub is None:
        raise entry.error("eventhub", "needs `eventhub` (the Event Hub's name)")
    namespace = entry.text("namespace")
    if namespace is not None and "." not in namespace:
        namespace = f"{namespace}.servicebus.windows.net"
    variable = entry.text("connection-string-env")
    if namespace is None and variable is None:
        raise entry.error(
            "namespace",
            "needs `namespace` (or `connection-string-env`)",
            hint="e.g. namespace: myhubs.servicebus.windows.net",
        )
    count = entry.values.get("max-batch", 300)
    if isinstance(count, bool) or not str(count).isdigit() or not 1 <= int(str(count)) <= 10_000:
        raise entry.error("max-batch", f"{count!r} is not a whole number from 1 to 10000")
    cluster = entry.cluster() if entry.text("cluster") else None
    return AksEventHubSpec(
        name=entry.text("name") or f"{TYPE}:{cluster or eventhub}",
        cluster=cluster,
        eventhub=eventhub,
        namespace=namespace,
        connection_env=variable,
        consumer_group=entry.text("consumer-group", "$Default") or "$Default",
        from_start=entry.choice("from", ("start", "end")) == "start",
        max_batch=int(str(count)),
        max_wait=entry.seconds("max-wait", 5.0),
    )


def consumer_client(spec: AksEventHubSpec, store: Any) -> Any:
    """An EventHubConsumerClient from the connection string's variable, or the namespace and
    DefaultAzureCredential, checkpointing into `store` (a FileCheckpointStore: the SDK's interface, duck-typed
    so that configuring the source imports no SDK)."""
    from azure.eventhub import EventHubConsumerClient

    if spec.connection_env is not None:
        text = os.environ.get(spec.connection_env, "")
        if not text:
            raise SourceConfigError(
                f"the environment variable {spec.connection_env} is not set",
                field=f"{spec.name}.connection-string-env",
                hint="az eventhubs eventhub authorization-rule keys list … (docs/managed-clusters.md)",
            )
        try:
            return EventHubConsumerClient.from_connection_string(
                text, consumer_group=spec.consumer_group, eventhub_name=spec.eventhub, checkpoint_store=store
            )
        except ValueError:
            raise SourceConfigError(
                f"{spec.connection_env} does not hold an Event Hubs connection string",
                field=f"{spec.name}.connection-string-env",
            ) from None
    require("azure", f"the {TYPE} source with namespace", "azure.identity")
    from azure.identity import DefaultAzureCredential

    return EventHubConsumerClient(
        str(spec.namespace),
        spec.eventhub,
        spec.consumer_group,
        DefaultAzureCredential(),
        checkpoint_store=store,
    )


class PartitionPosition(msgspec.Struct):
    """Where a partition was delivered up to: the SDK's offset (a string) and sequence number."""

    offset: str
    sequence_number: int


class Position(msgspec.Struct):
    """An Event Hub's checkpoint: each partition's position, by partition id."""

    key: str
    partitions: dict[str, PartitionPosition] = {}


class FileCheckpointStore:
    """azure-eventhub's CheckpointStore on kubetrail's durable checkpoint files; ownership in memory (one
    consumer per consumer group)."""

    def __init__(self, checkpoints: SourceCheckpoints, *, key: str) -> None:
        self.checkpoints = checkpoints
        self.key = key
        self.position = checkpoints.load(TYPE, key, Position) or Position(key)
        self._owned: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def list_ownership(
        self, fully_qualified_namespace: str, eventhub_name: str, consumer_group: str, **kwargs: Any
    ) -> Iterable[dict[str, Any]]:
        with self._lock:
            return [dict(item) for item in self._owned.values()]

    def claim_ownership(self, ownership_list: Iterable[dict[str, Any]], **kwargs: Any) -> Iterable[dict[str, Any]]:
        claimed = []
        with self._lock:
            for item in ownership_list:
                owned = {
                    **item,
                    "last_modified_time": dt.datetime.now(dt.UTC).timestamp(),
                    "etag": str(time.monotonic_ns()),
                }
                self._owned[str(item["partition_id"])] = owned
                claimed.append(dict(owned))
        return claimed

    def update_checkpoint(self, checkpoint: dict[str, Any], **kwargs: Any) -> None:
        """Save a partition's position durably (called by `PartitionContext.update_checkpoint`)."""
        with self._lock:
            partition = str(checkpoint["partition_id"])
            self.position.partitions[partition] = PartitionPosition(
                str(checkpoint["offset"]), int(checkpoint["sequence_number"])
            )
            self.checkpoints.save(TYPE, self.key, self.position)

    def list_checkpoints(
        self, fully_qualified_namespace: str, eventhub_name: str, consumer_group: str, **kwargs: Any
    ) -> Iterable[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "fully_qualified_namespace": fully_qualified_namespace,
                    "eventhub_name": eventhub_name,
                    "consumer_group": consumer_group,
                    "partition_id": partition,
                    "offset": position.offset,
                    "sequence_number": position.sequence_number,
                }
                for partition, position in self.position.partitions.items()
            ]


def event_bytes(event: Any) -> bytes:
    """An EventData's body as bytes (a data body may come as one bytes or several sections)."""
    body = event.body
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    return b"".join(bytes(part) for part in body)


def merge(batches: Iterable[Batch]) -> list[Batch]:
    """One batch per cluster from many (a callback's events are stored with one fsync per cluster)."""
    merged: dict[str | None, Batch] = {}
    for batch in batches:
        into = merged.setdefault(batch.cluster, Batch(cluster=batch.cluster))
        into.events.extend(batch.events)
        into.raws.extend(batch.raws)
        into.rejected.extend(batch.rejected)
        into.skipped.update(batch.skipped)
    return list(merged.values())


class AksEventHubSource:
    """Receives every partition of one Event Hub into the pipeline (the SDK's thread), checkpointing each batch
    after the WAL fsync."""

    def __init__(self, spec: AksEventHubSpec, pipeline: Pipeline, store: FileCheckpointStore, *, client: Any) -> None:
        self.name = spec.name
        self.spec = spec
        self.pipeline = pipeline
        self.store = store
        self.client = client
        self.stats = SourceStats()
        self._thread: threading.Thread | None = None
        self._stopping = False

    # ----- the SDK's callbacks --------------------------------------------------------------------------------

    def on_event_batch(self, partition_context: Any, events: list[Any]) -> None:
        """Store a partition's batch, then checkpoint its last event; raise (nothing checkpointed) on failure."""
        if not events:
            return
        source = f"eventhub {self.spec.eventhub} partition {partition_context.partition_id}"
        decoded: list[Batch] = []
        for event in events:
            where = f"{source} offset {event.offset}"
            decoded.extend(decode_aks([event_bytes(event)], where))
        for batch in merge(decoded):
            if batch.events or batch.rejected:
                deliver(self.pipeline, batch, self.spec.cluster, source, self.stats)
            else:
                self.stats.skipped += sum(batch.skipped.values())
        partition_context.update_checkpoint(events[-1])
        self.stats.succeeded()
        enqueued = events[-1].enqueued_time
        if enqueued is not None:
            self.stats.lag_seconds = max(0.0, time.time() - enqueued.timestamp())

    def on_error(self, partition_context: Any, error: Exception) -> None:
        where = f" partition {partition_context.partition_id}" if partition_context is not None else ""
        first = (str(error).splitlines() or [""])[0][:300]
        self.stats.failed(f"{self.spec.eventhub}{where}: {type(error).__name__}: {first}".rstrip(": "))
        log.warning("source %s failed%s: %s", self.name, where, type(error).__name__)

    # ----- the Source protocol --------------------------------------------------------------------------------

    def run(self) -> None:
        """The SDK's receive loop, until `stop` closes the client; what ends it otherwise is reported."""
        try:
            self.client.receive_batch(
                on_event_batch=self.on_event_batch,
                on_error=self.on_error,
                max_batch_size=self.spec.max_batch,
                max_wait_time=self.spec.max_wait,
                starting_position="-1" if self.spec.from_start else "@latest",
            )
        except Exception as error:
            if not self._stopping:
                self.on_error(None, error)
                # the receive loop is over: failing (in /readyz) until serve restarts
                self.stats.consecutive_failures = max(self.stats.consecutive_failures, FAILING_AFTER)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"kubetrail-source-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the client (the SDK finishes the batch in hand, which checkpoints after its fsync)."""
        self._stopping = True
        self.client.close()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def health(self) -> str | None:
        if self.stats.consecutive_failures < FAILING_AFTER:
            return None
        return f"source {self.name} is failing ({self.stats.consecutive_failures} tries): {self.stats.last_error}"
