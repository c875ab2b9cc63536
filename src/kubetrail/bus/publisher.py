"""The receiver's side of the bus: an accepted batch becomes one EventList message per partition it touches
(events partitioned by who made them), each acknowledged by JetStream.

The HTTP 200 to the API server is sent only after JetStream's publish acks, which with replicated
streams means a quorum of servers has every part of the batch on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.client import JetStreamContext
from nats.js.errors import Error as JetStreamError

from kubetrail.bus.config import CLUSTER_HEADER, MSG_ID_HEADER, BusConfig, BusError, batch_message_id, partition_of
from kubetrail.bus.connection import connect
from kubetrail.bus.streams import ensure_streams
from kubetrail.model import Event

PUBLISH_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Published:
    """What JetStream answered for one batch: events stored, events it already had, the last sequence."""

    events: int
    duplicates: int
    sequence: int


def event_list_body(
    events: Sequence[Event], raw_lines: Sequence[bytes | None] | None, encoder: msgspec.json.Encoder
) -> bytes:
    """An EventList holding the events, each as the JSON it arrived as when known (unknown fields survive)."""
    items: list[bytes] = []
    for index, event in enumerate(events):
        raw = raw_lines[index] if raw_lines is not None else None
        items.append(raw.strip() if raw else encoder.encode(event))
    return b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[' + b",".join(items) + b"]}"


class BusPublisher:
    """Publishes batches of one cluster's events to the events stream."""

    def __init__(self, config: BusConfig) -> None:
        self.config = config
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._encoder = msgspec.json.Encoder()

    async def connect(self) -> None:
        """Connect (reconnecting forever in the background) and make sure the streams exist."""
        self._nc = await connect(self.config, "kubetrail-receiver")
        self._js = self._nc.jetstream()
        await ensure_streams(self._js, self.config)

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def publish(
        self, cluster: str, events: Sequence[Event], raw_lines: Sequence[bytes | None] | None = None
    ) -> Published:
        """Publish one batch (a message per partition) and wait for JetStream's acks; BusError when a part was not
        stored (the caller answers 503 and the API server retries the whole batch: stored parts are de-duplicated).
        """
        if self._js is None:
            raise BusError("the bus publisher is not connected")
        parts: dict[int, list[int]] = {}
        for index, event in enumerate(events):
            parts.setdefault(partition_of(event.user.username, self.config.partitions), []).append(index)
        acks = await asyncio.gather(
            *(
                self._publish_part(cluster, partition, indexes, events, raw_lines)
                for partition, indexes in parts.items()
            )
        )
        stored = sum(count for count, duplicate, _ in acks if not duplicate)
        return Published(stored, len(events) - stored, max((sequence for _, _, sequence in acks), default=0))

    async def _publish_part(
        self,
        cluster: str,
        partition: int,
        indexes: list[int],
        events: Sequence[Event],
        raw_lines: Sequence[bytes | None] | None,
    ) -> tuple[int, bool, int]:
        assert self._js is not None
        chosen = [events[index] for index in indexes]
        raws = [raw_lines[index] for index in indexes] if raw_lines is not None else None
        body = event_list_body(chosen, raws, self._encoder)
        headers = {
            MSG_ID_HEADER: batch_message_id(cluster, ((event.auditID, str(event.stage)) for event in chosen)),
            CLUSTER_HEADER: cluster,
        }
        try:
            ack = await self._js.publish(
                self.config.subject(cluster, partition), body, timeout=PUBLISH_TIMEOUT_SECONDS, headers=headers
            )
        except (NatsError, JetStreamError, TimeoutError) as error:
            raise BusError(f"JetStream did not acknowledge the batch: {str(error) or type(error).__name__}") from error
        return len(chosen), bool(ack.duplicate), ack.seq

    async def close(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(NatsError, OSError):  # NATS may already be gone
                await self._nc.close()
            self._nc = None
            self._js = None
