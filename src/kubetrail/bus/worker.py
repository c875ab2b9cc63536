"""A bus worker: owns some of the partitions of the events stream, stores their batches in its part of the lake,
runs detection (stateless and stateful rules) and publishes alerts, then acknowledges the batches to JetStream.

Events are partitioned by who made them (`partition_of`), and the live workers share the partitions
(`kubetrail.bus.partitions`), so one identity's stateful-rule state lives on one worker at a time; a partition's
state is checkpointed into the lake before its batches are acknowledged, and restored by whichever worker owns
it next.

Each worker owns one store under the lake (`<lake>/worker=<id>/`): its own WAL, Parquet segments and
hash-chained manifest. A batch is acknowledged only after its WAL fsync, so a worker killed at any point
loses nothing: JetStream redelivers what was not acknowledged (to the partition's next owner). A batch written but
not acknowledged before a crash can therefore be stored twice (by two workers); the lake's `events` view keeps one
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

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.client import JetStreamContext
from nats.js.errors import Error as JetStreamError

from kubetrail.bus.config import CLUSTER_HEADER, MSG_ID_HEADER, BusConfig, BusError
from kubetrail.bus.connection import connect
from kubetrail.bus.consumer import PartitionConsumer, PartitionFailed
from kubetrail.bus.lake import worker_store_dir
from kubetrail.bus.partitions import Membership, assigned
from kubetrail.bus.streams import MEMBER_TTL_SECONDS, ensure_streams
from kubetrail.collect.metrics import MAX_CLUSTER_LABELS, OTHER_CLUSTERS
from kubetrail.detect import Alert, Engine, EventContext, Matching
from kubetrail.detect.compiler import RuleSet
from kubetrail.detect.requests import OncePerRequest
from kubetrail.detect.stateful import DEFAULT_MAX_KEYS
from kubetrail.intake import IntakeError, decode_body
from kubetrail.model import Event
from kubetrail.store import AppendResult, Store, StoreError, StoreOptions, check_cluster
from kubetrail.store.alerts import AlertLog
from kubetrail.store.deadletter import Refused
from kubetrail.store.errors import NotDurableError

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.5
STORE_RETRY_SECONDS = 30.0
"""How long a group of batches waits for the store to make room (sealing is behind) before it is handed back."""


@dataclass
class WorkerStats:
    """Counts for logs, tests and the bench."""

    batches: int = 0
    events: int = 0
    duplicates: int = 0
    malformed: int = 0
    alerts: int = 0
    redelivered: int = 0
    unstored: int = 0  # batches handed back to JetStream because the store refused them
    clusters: dict[str, int] = field(default_factory=dict)
    partitions: int = 0  # owned now
    handovers: int = 0  # partitions taken on or given up


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
        rules: RuleSet | None = None,
        hostname: str = "",
        max_keys: int = DEFAULT_MAX_KEYS,
        store_options: StoreOptions | None = None,
        store_retry_seconds: float = STORE_RETRY_SECONDS,
    ) -> None:
        self.config = config
        self.worker_id = worker_id
        self.lake = lake
        self.store = Store.open(worker_store_dir(lake, worker_id), store_options)
        self.alert_log = AlertLog(self.store.layout.root)
        self.rules = rules
        self.hostname = hostname
        self.max_keys = max_keys  # per stateful rule and partition
        self.store_retry_seconds = store_retry_seconds
        self.stats = WorkerStats()
        self.owned: dict[int, PartitionConsumer] = {}
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._membership: Membership | None = None
        self._stop = asyncio.Event()
        self.joined = False
        """Whether `run` has joined the worker pool (it stays joined across reconnects)."""

    async def connect(self) -> None:
        self._nc = await connect(self.config, f"kubetrail-worker-{self.worker_id}")
        self._js = self._nc.jetstream()
        await ensure_streams(self._js, self.config)

    def stop(self) -> None:
        """Finish the batches in hand, hand the partitions over, then return from `run`."""
        self._stop.set()

    @property
    def ready(self) -> bool:
        """Connected to NATS and in the worker pool, so batches can reach this worker now."""
        return self.joined and self._nc is not None and self._nc.is_connected and not self._stop.is_set()

    async def run(self) -> None:
        """Take part in the pool until `stop()`: announce this worker, work on the partitions that are its own."""
        if self._js is None:
            await self.connect()
        assert self._js is not None
        self._membership = Membership(self._js, self.config, self.worker_id)
        last_heartbeat = asyncio.get_running_loop().time()
        while not self._stop.is_set():
            try:
                await self._rebalance()
                last_heartbeat = asyncio.get_running_loop().time()
                self.joined = True
            except (NatsError, JetStreamError, TimeoutError) as error:
                log.warning("worker pool: %s", str(error) or type(error).__name__)
                if asyncio.get_running_loop().time() - last_heartbeat > MEMBER_TTL_SECONDS:
                    await self._abandon_all()  # our leases have expired: others may own these partitions now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), HEARTBEAT_SECONDS)
        # every partition finishes its batches in hand at once (each may be waiting for a fetch to end)
        await asyncio.gather(*(self._give_up(partition, commit=True) for partition in sorted(self.owned)))
        await self._membership.leave()

    async def _rebalance(self) -> None:
        """One round: renew membership and leases, give up partitions that are now another's, claim our own."""
        membership = self._membership
        assert membership is not None
        members = await membership.heartbeat()
        wanted = assigned(self.worker_id, members, self.config.partitions)
        kept = [partition for partition in sorted(self.owned) if partition in wanted]
        renewed = await asyncio.gather(*(membership.renew(partition) for partition in kept))  # one round trip
        for partition, held in zip(kept, renewed, strict=True):
            if not held:
                log.warning("partition %d: lease lost; leaving its open batches to its next owner", partition)
                await self._give_up(partition, commit=False)
        await asyncio.gather(
            *(self._give_up(partition, commit=True) for partition in sorted(self.owned) if partition not in wanted)
        )
        for partition in sorted(wanted - set(self.owned)):
            if await membership.claim(partition):
                await self._take(partition)

    async def _take(self, partition: int) -> None:
        assert self._js is not None
        consumer = PartitionConsumer(self._js, self.config, partition, self.lake, self._engine, self._handle_fetched)
        try:
            await consumer.start()
        except BusError as error:  # the cluster has no quorum for it now: give it back, try again next round
            log.warning("partition %d: %s", partition, error)
            if self._membership is not None:
                await self._membership.release(partition)
            return
        self.owned[partition] = consumer
        self.stats.partitions = len(self.owned)
        self.stats.handovers += 1
        log.info("worker %s: took partition %d", self.worker_id, partition)

    def _engine(self) -> OncePerRequest | None:
        """A detection engine for one partition, its stateful rules empty."""
        if self.rules is None:
            return None
        stateful = self.rules.detectors(max_keys=self.max_keys, hostname=self.hostname)
        return OncePerRequest(Engine(self.rules, matching=Matching.ALL, hostname=self.hostname, detectors=stateful))

    async def _give_up(self, partition: int, *, commit: bool) -> None:
        consumer = self.owned.pop(partition)
        await consumer.stop(commit=commit)
        if commit and self._membership is not None:
            await self._membership.release(partition)
        self.stats.partitions = len(self.owned)
        self.stats.handovers += 1
        log.info("worker %s: gave up partition %d", self.worker_id, partition)

    async def _abandon_all(self) -> None:
        for partition in sorted(self.owned):
            await self._give_up(partition, commit=False)

    async def _handle_fetched(self, messages: list[Msg], engine: OncePerRequest | None) -> list[Msg]:
        """Store a fetched group of batches (one append, so one WAL record and fsync, per cluster), then detect over
        them in order; the batches that may be acknowledged. PartitionFailed when the group could not be stored
        (the partition then hands back every batch it has not acknowledged)."""
        opened = []
        for message in messages:
            opened.append(self._open(message))
            await asyncio.sleep(0)  # let heartbeats and the other partitions in between batches
        groups: dict[str, tuple[list[Event], list[bytes | None]]] = {}
        for _, cluster, events, raws in opened:
            if events:
                group = groups.setdefault(cluster, ([], []))
                group[0].extend(events)
                group[1].extend(raws)
        try:
            results = await asyncio.gather(*(self._store(cluster, *group) for cluster, group in groups.items()))
        except PartitionFailed:
            self.stats.unstored += len(messages)
            raise
        for result, cluster in zip(results, groups, strict=True):
            self.stats.events += result.accepted
            self.stats.duplicates += result.duplicates
            label = (
                cluster
                if cluster in self.stats.clusters or len(self.stats.clusters) < MAX_CLUSTER_LABELS
                else OTHER_CLUSTERS
            )
            self.stats.clusters[label] = self.stats.clusters.get(label, 0) + result.accepted
        self.stats.batches += len(messages)
        done: list[Msg] = []
        for message, cluster, events, raws in opened:
            try:
                if engine is not None and events:
                    await self._detect(engine, cluster, events, raws)
                    await asyncio.sleep(0)
            except (NatsError, JetStreamError, TimeoutError) as error:
                # not acknowledged: JetStream redelivers the batch; the lake and the alert ids absorb the repeat
                log.warning("alerts not published (%s); the batch will be redelivered", str(error) or "timeout")
                continue
            done.append(message)
        return done

    async def _store(self, cluster: str, events: list[Event], raws: list[bytes | None]) -> AppendResult:
        """Append durably; while the store refuses for want of room (sealing is behind), wait and retry."""
        deadline = asyncio.get_running_loop().time() + self.store_retry_seconds
        while True:
            try:
                return await self.store.append_async(cluster, events, raws)
            except NotDurableError as error:
                if self._stop.is_set() or asyncio.get_running_loop().time() > deadline:
                    raise PartitionFailed(f"the batches were not stored: {error}") from error
                await asyncio.sleep(0.2)
            except StoreError as error:
                raise PartitionFailed(f"the batches were not stored: {error}") from error

    def _open(self, message: Msg) -> tuple[Msg, str, list[Event], list[bytes | None]]:
        """The batch's cluster and events; a message that is not an EventList goes to the dead-letter file."""
        if message.metadata.num_delivered and message.metadata.num_delivered > 1:
            self.stats.redelivered += 1
        try:
            cluster, events, raws = self._decode(message)
        except (IntakeError, StoreError) as error:
            log.error("a bus message is not an EventList of a valid cluster, kept in the dead-letter file: %s", error)
            self.store.dead_letter(source=f"bus:{message.subject}", reason=str(error), raw=message.data)
            self.store.dead_letters.flush()
            return message, "", [], []
        return message, cluster, events, raws

    def _decode(self, message: Msg) -> tuple[str, list[Event], list[bytes | None]]:
        headers = message.headers or {}
        cluster = check_cluster(headers.get(CLUSTER_HEADER) or message.subject.split(".")[-2])
        source = f"bus:{message.subject}#{headers.get(MSG_ID_HEADER, '?')}"
        batch = decode_body(message.data, source=source)
        if batch.rejected:
            self.stats.malformed += len(batch.rejected)
            refused = [Refused(item.raw, item.reason, item.line) for item in batch.rejected]
            self.store.dead_letters.write_many(source=source, cluster=cluster, refused=refused)
        return cluster, batch.events, batch.raws

    async def _detect(
        self, engine: OncePerRequest, cluster: str, events: Sequence[Event], raws: Sequence[bytes | None]
    ) -> None:
        assert self._js is not None
        found: list[tuple[Alert, str]] = []
        for event, raw in zip(events, raws, strict=True):
            for alert in engine.detect(EventContext(event, cluster, raw)):
                found.append((alert, str(event.stage)))
        if not found:
            return
        await asyncio.to_thread(self.alert_log.append, [alert for alert, _ in found])
        try:
            for alert, stage in found:
                await self._js.publish(
                    self.config.alerts_subject(alert.cluster or cluster),
                    alert.to_falco_json(),
                    headers={MSG_ID_HEADER: alert_message_id(alert, stage)},
                )
        except BaseException:
            engine.forget([alert for alert, _ in found])  # the redelivered batch must raise them again
            raise
        self.stats.alerts += len(found)

    async def close(self) -> None:
        """Drain the connection, then seal and close this worker's store."""
        if self._nc is not None:
            with contextlib.suppress(NatsError, OSError):  # NATS may be gone: the store is sealed regardless
                await self._nc.close()
            self._nc = None
        self.alert_log.close()
        await asyncio.to_thread(self.store.close)
