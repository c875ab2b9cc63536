"""A bus worker: pulls batches from the shared durable consumer, stores them in its part of the lake,
runs detection and publishes alerts, then acknowledges the batch to JetStream.

Each worker owns one store under the lake (`<lake>/worker=<id>/`): its own WAL, Parquet segments and
hash-chained manifest. A batch is acknowledged only after its WAL fsync, so a worker killed at any point
loses nothing: JetStream redelivers what was not acknowledged (to any worker). A batch written but not
acknowledged before a crash can therefore be stored twice (by two workers); the lake's `events` view keeps one
row per (cluster, auditID, stage), and alerts carry a JetStream message id per (rule, cluster, auditID, stage),
so within the duplicate window each alert is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.client import JetStreamContext
from nats.js.errors import Error as JetStreamError

from kubetrail.bus.config import CLUSTER_HEADER, MSG_ID_HEADER, BusConfig, BusError
from kubetrail.bus.connection import connect
from kubetrail.bus.lake import worker_store_dir
from kubetrail.bus.streams import ensure_streams
from kubetrail.detect import Alert, Engine, EventContext
from kubetrail.model import Event, EventDecodeError, decode_event
from kubetrail.store import Store, StoreOptions
from kubetrail.store.alerts import AlertLog

log = logging.getLogger(__name__)

FETCH_BATCHES = 16
FETCH_TIMEOUT_SECONDS = 1.0
SUBSCRIBE_WAIT_SECONDS = 60.0


class _EventList(msgspec.Struct):
    items: list[msgspec.Raw] = msgspec.field(default_factory=list)


@dataclass
class WorkerStats:
    """Counts for logs, tests and the bench."""

    batches: int = 0
    events: int = 0
    duplicates: int = 0
    malformed: int = 0
    alerts: int = 0
    redelivered: int = 0
    clusters: dict[str, int] = field(default_factory=dict)


def alert_message_id(alert: Alert, stage: str) -> str:
    """One id per (rule, cluster, auditID, stage): JetStream drops a re-published alert within its window."""
    key = "\0".join((alert.rule, alert.cluster or "", alert.audit_id, stage))
    return hashlib.sha256(key.encode()).hexdigest()[:40]


class Worker:
    """One member of the worker pool."""

    def __init__(
        self,
        config: BusConfig,
        lake: Path,
        worker_id: str,
        *,
        engine: Engine | None = None,
        store_options: StoreOptions | None = None,
    ) -> None:
        self.config = config
        self.worker_id = worker_id
        self.store = Store.open(worker_store_dir(lake, worker_id), store_options)
        self.alert_log = AlertLog(self.store.layout.root)
        self.engine = engine
        self.stats = WorkerStats()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._stop = asyncio.Event()
        self.joined = False
        """Whether `run` has bound to the shared durable consumer (it stays bound across reconnects)."""
        self._decoder = msgspec.json.Decoder(_EventList)
        self._encoder = msgspec.json.Encoder()

    async def connect(self) -> None:
        self._nc = await connect(self.config, f"kubetrail-worker-{self.worker_id}")
        self._js = self._nc.jetstream()
        await ensure_streams(self._js, self.config)

    def stop(self) -> None:
        """Finish the batch in hand, then return from `run`."""
        self._stop.set()

    @property
    def ready(self) -> bool:
        """Connected to NATS and bound to the consumer, so batches can reach this worker now."""
        return self.joined and self._nc is not None and self._nc.is_connected and not self._stop.is_set()

    async def run(self) -> None:
        """Pull, store, detect, publish alerts, acknowledge — until `stop()`."""
        if self._js is None:
            await self.connect()
        assert self._js is not None
        consumer = ConsumerConfig(
            durable_name=self.config.consumer,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.config.ack_wait_seconds,
            max_ack_pending=FETCH_BATCHES * 64,
        )
        subscription = await self._subscribe(consumer)
        self.joined = True
        while not self._stop.is_set():
            try:
                messages = await subscription.fetch(FETCH_BATCHES, timeout=FETCH_TIMEOUT_SECONDS)
            except (NatsTimeoutError, TimeoutError):
                continue
            except (NatsError, JetStreamError) as error:
                log.warning("fetch failed, retrying: %s", error)
                await asyncio.sleep(0.5)
                continue
            # concurrent appends share one WAL fsync (the store's group commit)
            await asyncio.gather(*(self._handle(message) for message in messages))

    async def _subscribe(self, consumer: ConsumerConfig) -> JetStreamContext.PullSubscription:
        """Bind to the shared durable consumer; a cluster still moving the consumer's leader (a node just died)
        times out for a moment, so this retries for `SUBSCRIBE_WAIT_SECONDS`."""
        assert self._js is not None
        deadline = asyncio.get_running_loop().time() + SUBSCRIBE_WAIT_SECONDS
        while True:
            try:
                return await self._js.pull_subscribe(
                    f"{self.config.subject_prefix}.>",
                    durable=self.config.consumer,
                    stream=self.config.stream,
                    config=consumer,
                )
            except (NatsError, JetStreamError, TimeoutError) as error:
                if self._stop.is_set() or asyncio.get_running_loop().time() > deadline:
                    raise BusError(
                        f"cannot join the consumer {self.config.consumer!r}: {str(error) or type(error).__name__}",
                        hint="check that the NATS cluster has a JetStream quorum",
                    ) from error
                log.warning("joining the consumer failed, retrying: %s", str(error) or type(error).__name__)
                await asyncio.sleep(0.5)

    def _decode(self, message: Msg) -> tuple[str, list[Event], list[bytes | None]]:
        headers = message.headers or {}
        cluster = headers.get(CLUSTER_HEADER) or message.subject.rsplit(".", 1)[-1]
        source = f"bus:{message.subject}#{headers.get(MSG_ID_HEADER, '?')}"
        envelope = self._decoder.decode(message.data)
        events: list[Event] = []
        raws: list[bytes | None] = []
        for index, item in enumerate(envelope.items):
            raw = bytes(item)
            try:
                events.append(decode_event(raw, source=source, line=index + 1))
            except EventDecodeError as error:
                self.stats.malformed += 1
                self.store.dead_letter(source=source, reason=str(error), raw=raw, cluster=cluster)
                continue
            raws.append(raw)
        return cluster, events, raws

    async def _handle(self, message: Msg) -> None:
        if message.metadata.num_delivered and message.metadata.num_delivered > 1:
            self.stats.redelivered += 1
        try:
            cluster, events, raws = self._decode(message)
        except (msgspec.DecodeError, ValueError) as error:
            log.error("a bus message is not an EventList, kept in the dead-letter file: %s", error)
            self.store.dead_letter(source=f"bus:{message.subject}", reason=str(error), raw=message.data)
            self.store.dead_letters.flush()
            await message.ack()
            return
        result = await self.store.append_async(cluster, events, raws)
        self.stats.batches += 1
        self.stats.events += result.accepted
        self.stats.duplicates += result.duplicates
        self.stats.clusters[cluster] = self.stats.clusters.get(cluster, 0) + result.accepted
        try:
            if self.engine is not None and events:
                await self._detect(cluster, events, raws)
            await message.ack_sync()
        except (NatsError, JetStreamError, TimeoutError) as error:
            # not acknowledged: JetStream redelivers the batch; the lake and the alert ids absorb the repeat
            log.warning(
                "batch stored but not acknowledged (%s); it will be redelivered", str(error) or type(error).__name__
            )

    async def _detect(self, cluster: str, events: Sequence[Event], raws: Sequence[bytes | None]) -> None:
        assert self._js is not None
        found: list[tuple[Alert, str]] = []
        engine = self.engine
        assert engine is not None
        for event, raw in zip(events, raws, strict=True):
            for alert in engine.detect(EventContext(event, cluster, raw)):
                found.append((alert, str(event.stage)))
        if not found:
            return
        await asyncio.to_thread(self.alert_log.append, [alert for alert, _ in found])
        for alert, stage in found:
            await self._js.publish(
                self.config.alerts_subject(alert.cluster or cluster),
                alert.to_falco_json(),
                headers={MSG_ID_HEADER: alert_message_id(alert, stage)},
            )
        self.stats.alerts += len(found)

    async def close(self) -> None:
        """Drain the connection, then seal and close this worker's store."""
        if self._nc is not None:
            with contextlib.suppress(NatsError, OSError):  # NATS may be gone: the store is sealed regardless
                await self._nc.close()
            self._nc = None
        self.alert_log.close()
        await asyncio.to_thread(self.store.close)
