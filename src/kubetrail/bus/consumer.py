"""One partition at work on one worker: its durable pull consumer, its stateful-rule state and its checkpoint.

Batches are acknowledged to JetStream in groups, right after the partition's stateful state (which already
counts them) is checkpointed into the lake. So whichever worker takes the partition over — after a clean hand-over
or a crash — restores a state that counts exactly the acknowledged batches, and JetStream redelivers the rest.

Batches are fetched many at a time (`FETCH_BATCHES`), and the next fetch is already on its way while the current
one is stored and detected, so the partition never waits for the network between two groups.

When a group cannot be stored (the disk is full or failing), nothing held is acknowledged: the partition hands
those batches back to JetStream at once, rolls its stateful state back to the checkpoint (which does not count
them) and tries again a moment later, so they are counted once when they are finally stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.client import JetStreamContext
from nats.js.errors import Error as JetStreamError

from kubetrail.bus.config import BusConfig, BusError
from kubetrail.detect.requests import OncePerRequest
from kubetrail.detect.stateful import StatefulDetector
from kubetrail.detect.stateful.checkpoint import CheckpointError

log = logging.getLogger(__name__)

FETCH_BATCHES = 64
"""Batches per fetch: a group is stored with one append per cluster and one fsync (receivers' batches of 400 events
are split over the partitions, so one batch of a partition holds tens to hundreds of events)."""
FETCH_TIMEOUT_SECONDS = 1.0
SUBSCRIBE_WAIT_SECONDS = 60.0
COMMIT_EVERY_SECONDS = 1.0
MAX_ACK_PENDING = 20_000

LATE_SECONDS = 0.3
RETRY_SECONDS = 1.0
"""After a group could not be stored, how long the partition waits before it fetches again."""

# Stores and detects a fetched group of batches; returns those that may be acknowledged. It raises
# PartitionFailed when the group could not be stored.
Handler = Callable[[list[Msg], OncePerRequest | None], Awaitable[list[Msg]]]
# A new detection engine with empty state (None: detection is off).
EngineFactory = Callable[[], OncePerRequest | None]


def checkpoint_path(lake: Path, partition: int, index: int) -> Path:
    """Where a partition's stateful detector `index` keeps its checkpoint (shared by all workers)."""
    return lake / "state" / f"partition={partition}" / f"stateful-{index}.json"


class PartitionFailed(Exception):
    """A fetched group of batches could not be stored: none of the partition's open batches may be acknowledged."""


class PartitionConsumer:
    """Consumes one partition until stopped; `handle` stores and detects the batches of each fetch."""

    def __init__(
        self,
        js: JetStreamContext,
        config: BusConfig,
        partition: int,
        lake: Path,
        engines: EngineFactory,
        handle: Handler,
    ) -> None:
        self.js = js
        self.config = config
        self.partition = partition
        self.lake = lake
        self._engines = engines
        self.engine = engines()
        self._handle = handle
        self._held: list[Msg] = []
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0
        """Groups of batches that could not be stored (and were handed back to JetStream)."""
        self._subscription: JetStreamContext.PullSubscription | None = None

    @property
    def _detectors(self) -> list[StatefulDetector]:
        if self.engine is None:
            return []
        return [detector for detector in self.engine.detectors if isinstance(detector, StatefulDetector)]

    async def start(self) -> None:
        """Restore the partition's stateful state, bind to its consumer and start consuming."""
        await self._restore()
        self._subscription = await self._subscribe()
        self._task = asyncio.create_task(self._run(), name=f"partition-{self.partition}")

    async def _restore(self) -> None:
        """Load the partition's stateful state from its checkpoint (empty when there is none or it is damaged)."""
        for index, detector in enumerate(self._detectors):
            path = checkpoint_path(self.lake, self.partition, index)
            if path.is_file():
                try:
                    await asyncio.to_thread(detector.load, str(path))
                except CheckpointError as error:  # as serve does: a damaged state starts empty, never blocks
                    log.warning("partition %d: stateful state not restored (starting empty): %s", self.partition, error)

    async def stop(self, *, commit: bool = True) -> None:
        """Finish the batches in hand; with `commit`, checkpoint and acknowledge them (a clean hand-over).
        Without, leave them unacknowledged for the partition's next owner (the lease was lost)."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        if commit:
            await self._commit()
        else:  # the next owner restores the checkpoint, which does not count these: it gets them at once
            await self._redeliver(self._held)
            self._held = []
        if self._subscription is not None:
            await self._hand_back_late()
            with contextlib.suppress(NatsError, JetStreamError, OSError):
                await self._subscription.unsubscribe()

    async def _hand_back_late(self) -> None:
        """A pull request outlives the fetch that made it by its time in transit, so batches can still reach the
        subscription after the last fetch: wait that long, then hand back what came (it would otherwise come again
        only after the ack wait). The fetch that collects them asks for nothing more than they are plus one, and,
        since some were already here, does not wait on the server."""
        assert self._subscription is not None
        await asyncio.sleep(LATE_SECONDS)
        waiting = self._subscription.pending_msgs
        if not waiting:
            return
        with contextlib.suppress(NatsError, JetStreamError, TimeoutError):
            await self._redeliver(await self._subscription.fetch(waiting + 1, timeout=FETCH_TIMEOUT_SECONDS))

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        """Bind to the partition's durable consumer; a cluster still moving leaders (a node just died) times out
        for a moment, so this retries for `SUBSCRIBE_WAIT_SECONDS`."""
        consumer = ConsumerConfig(
            durable_name=self.config.partition_consumer(self.partition),
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.config.ack_wait_seconds,
            max_ack_pending=MAX_ACK_PENDING,
        )
        deadline = asyncio.get_running_loop().time() + SUBSCRIBE_WAIT_SECONDS
        while True:
            try:
                return await self.js.pull_subscribe(
                    self.config.partition_subjects(self.partition),
                    durable=self.config.partition_consumer(self.partition),
                    stream=self.config.stream,
                    config=consumer,
                )
            except (NatsError, JetStreamError, TimeoutError) as error:
                if self._stopping.is_set() or asyncio.get_running_loop().time() > deadline:
                    raise BusError(
                        f"cannot bind to the consumer of partition {self.partition}: "
                        f"{str(error) or type(error).__name__}",
                        hint="check that the NATS cluster has a JetStream quorum",
                    ) from error
                log.warning("binding partition %d failed, retrying: %s", self.partition, error)
                await asyncio.sleep(0.5)

    async def _fetch(self) -> list[Msg]:
        """The next group of batches (none after `FETCH_TIMEOUT_SECONDS` without any)."""
        assert self._subscription is not None
        try:
            return await self._subscription.fetch(FETCH_BATCHES, timeout=FETCH_TIMEOUT_SECONDS)
        except (NatsTimeoutError, TimeoutError):
            return []
        except (NatsError, JetStreamError) as error:
            log.warning("partition %d: fetch failed, retrying: %s", self.partition, error)
            await asyncio.sleep(0.5)
            return []

    async def _run(self) -> None:
        committed = time.monotonic()
        fetching: asyncio.Task[list[Msg]] | None = asyncio.create_task(self._fetch())
        while fetching is not None:
            messages = await fetching
            # the next fetch is on its way while this group is stored and detected
            fetching = None if self._stopping.is_set() else asyncio.create_task(self._fetch())
            try:
                if messages:
                    self._held.extend(await self._handle(messages, self.engine))
            except PartitionFailed as error:
                self.failures += 1
                log.error("partition %d: %s; its open batches go back to JetStream", self.partition, error)
                if fetching is not None:  # what it brings was delivered to us: hand it back too
                    messages = [*messages, *await fetching]
                await self._redeliver([*self._held, *messages])
                self._held = []
                self.engine = self._engines()  # the state counted the handed-back batches: back to the checkpoint
                await self._restore()
                if self._stopping.is_set():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), RETRY_SECONDS)
                fetching = None if self._stopping.is_set() else asyncio.create_task(self._fetch())
                continue
            if self._held and time.monotonic() - committed >= COMMIT_EVERY_SECONDS:
                await self._commit()
                committed = time.monotonic()

    async def _redeliver(self, messages: list[Msg]) -> None:
        """Ask JetStream to deliver these batches again now rather than after the ack wait."""
        with contextlib.suppress(NatsError, JetStreamError, OSError):
            for message in messages:
                await message.nak()

    async def _commit(self) -> None:
        """Checkpoint the stateful state, then acknowledge every batch it counts."""
        if not self._held:
            return
        for index, detector in enumerate(self._detectors):
            path = checkpoint_path(self.lake, self.partition, index)
            path.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(detector.save, str(path))
        held, self._held = self._held, []
        try:
            for message in held:
                await message.ack()  # buffered by the client: sent together with the next flush
        except (NatsError, JetStreamError, OSError) as error:
            # unacknowledged batches are redelivered: the lake and the alert ids absorb the repeat
            log.warning("partition %d: acknowledging failed (%s); batches will be redelivered", self.partition, error)
