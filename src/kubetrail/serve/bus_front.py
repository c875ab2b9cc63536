"""`serve --bus`: a stateless receiver whose durability is JetStream's publish ack instead of a local WAL.

The receiver is the same ASGI app as the single-process `serve` (routes, authentication, limits, validation,
metrics); only what it appends to changes: `BusSink` publishes each accepted batch to the events stream and
returns once JetStream acknowledged it (with replicated streams: once a quorum has it). Refused items still
go to a local dead-letter file (under `--store`, or a temporary directory).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetrail.bus.config import BusError, parse_bus_url
from kubetrail.bus.publisher import BusPublisher
from kubetrail.collect.auth import Authenticator, CertificateMap, TokenTable
from kubetrail.collect.limits import Limits
from kubetrail.collect.metrics import Registry
from kubetrail.collect.receiver import Receiver
from kubetrail.model import Event
from kubetrail.pipeline import Pipeline
from kubetrail.serve.app import ShutdownSummary
from kubetrail.serve.config import ServeConfig
from kubetrail.store import AppendResult
from kubetrail.store.deadletter import DeadLetterWriter
from kubetrail.store.errors import NotDurableError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _SpoolLayout:
    """What the receiver asks of a store's layout: a directory it must be able to write."""

    wal_dir: Path


class BusSink:
    """Stands where the receiver's store stands: `append_async` publishes and waits for JetStream's ack."""

    read_only = False

    def __init__(self, publisher: BusPublisher, spool: Path) -> None:
        spool.mkdir(parents=True, exist_ok=True)
        self.publisher = publisher
        self.layout = _SpoolLayout(spool)
        self.dead_letters = DeadLetterWriter(spool / "deadletter")
        self.published = 0
        self._lock = asyncio.Lock()

    async def _connected(self) -> BusPublisher:
        async with self._lock:
            if not self.publisher.connected:
                await self.publisher.connect()
        return self.publisher

    async def append_async(
        self, cluster: str, events: Sequence[Event], raw_lines: Sequence[bytes | None] | None = None
    ) -> AppendResult:
        """Publish the batch; NotDurableError (→ 503, the apiserver retries) when JetStream did not ack it."""
        if not events:
            return AppendResult(0, 0, 0)
        try:
            publisher = await self._connected()
            published = await publisher.publish(cluster, events, raw_lines)
        except BusError as error:
            raise NotDurableError(str(error)) from error
        self.published += len(events)
        return AppendResult(published.events, published.duplicates, published.sequence)

    def append(
        self, cluster: str, events: Sequence[Event], raw_lines: Sequence[bytes | None] | None = None
    ) -> AppendResult:
        """Only the asynchronous path publishes (no door of `serve --bus` appends synchronously)."""
        raise NotDurableError("the bus sink only publishes from the event loop (append_async)")

    def close(self) -> None:
        self.dead_letters.close()


class BusFrontApp:
    """The parts of `serve --bus`: receiver over a BusSink; no store, tailers or detection here."""

    def __init__(self, config: ServeConfig) -> None:
        if config.bus is None:
            raise BusError("serve --bus needs a NATS URL")
        self.config = config
        self.metrics = Registry()
        self.bus = parse_bus_url(config.bus, replicas=config.bus_replicas, partitions=config.bus_partitions)
        self.sink: BusSink | None = None
        self.receiver: Receiver | None = None
        self.tailers: list[Any] = []

    def open(self) -> None:
        config = self.config
        auth = Authenticator(
            TokenTable.load(config.token_file) if config.token_file is not None else None,
            CertificateMap.parse(config.client_cert_clusters) if config.client_ca is not None else None,
        )
        self.sink = BusSink(BusPublisher(self.bus), config.store)
        self.receiver = Receiver(
            Pipeline(self.sink, redact=config.redact, default_cluster=config.cluster),
            default_cluster=config.cluster,
            limits=Limits(config.max_body_bytes, config.max_event_bytes),
            auth=auth,
            metrics=self.metrics,
        )
        self.metrics.gauge(
            "kubetrail_bus_published_events_total",
            "Events JetStream acknowledged.",
            read=lambda: [((), float(self.sink.published if self.sink else 0))],
            kind="counter",
        )

    @property
    def asgi(self) -> Any:
        if self.receiver is None:
            raise RuntimeError("BusFrontApp.open() first")
        return self.receiver

    def start_background(self) -> None:
        """Nothing runs beside the receiver."""

    def close(self) -> ShutdownSummary:
        """Refuse new batches; the count reported is of events JetStream acknowledged."""
        if self.receiver is not None:
            self.receiver.accepting = False
        published = 0
        if self.sink is not None:
            published = self.sink.published
            self.sink.close()
        return ShutdownSummary(0, published, 0)
