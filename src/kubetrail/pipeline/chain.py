"""The one chain every door feeds: intake → validate → redact → sink, with detection on what became durable.

A door hands the pipeline a Batch from the intake (decoded, with its rejections) and the cluster it is for;
the pipeline checks the cluster label, replaces secret values when asked (so neither the store nor the rules
nor the dead letters ever hold them), appends the events to the sink, and keeps every rejection in the
sink's dead-letter file with its reason. The sink is the store (acknowledged after the WAL fsync; detection
runs on what the store reports durable, see `pipeline.detection`) or the bus publisher (acknowledged after
JetStream's). A door acknowledges its sender only after `accept` returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from kubetrail.intake import Batch, Rejection
from kubetrail.model import Event
from kubetrail.secrets.batch import redact_events
from kubetrail.secrets.files import redact_bytes
from kubetrail.store import AppendResult, check_cluster
from kubetrail.store.deadletter import DeadLetterWriter, Refused

DEFAULT_CLUSTER = "default"


class Sink(Protocol):
    """Where accepted events go: the store, or the bus publisher."""

    read_only: bool
    dead_letters: DeadLetterWriter

    def append(
        self, cluster: str, events: Sequence[Event], raw_lines: Sequence[bytes | None] | None = None
    ) -> AppendResult: ...

    async def append_async(
        self, cluster: str, events: Sequence[Event], raw_lines: Sequence[bytes | None] | None = None
    ) -> AppendResult: ...


@dataclass(frozen=True)
class Outcome:
    """What one batch came to: stored, already stored, refused (in the dead letters), values redacted."""

    cluster: str
    accepted: int
    duplicates: int
    rejected: int
    redacted: int = 0

    @property
    def received(self) -> int:
        return self.accepted + self.duplicates + self.rejected


class Pipeline:
    """Validate, redact and store batches; thread-safe, and usable from an event loop (`accept_async`)."""

    def __init__(self, sink: Sink, *, redact: bool = False, default_cluster: str = DEFAULT_CLUSTER) -> None:
        self.sink = sink
        self.redact = redact
        self.default_cluster = check_cluster(default_cluster)
        self.redacted = 0

    def cluster_of(self, batch: Batch, cluster: str | None) -> str:
        """The batch's cluster: the door's (a URL path, a flag), else the input's own (a cloud export), else the
        default; StoreError when it is not a valid name."""
        return check_cluster(cluster or batch.cluster or self.default_cluster)

    def _redact(self, batch: Batch, source: str) -> int:
        if not self.redact:
            return 0
        count = redact_events(batch.events, batch.raws, source) if batch.events else 0
        if batch.rejected:
            batch.rejected[:] = [_redacted(item) for item in batch.rejected]
        self.redacted += count
        return count

    def _dead_letter(self, cluster: str, rejected: list[Rejection], source: str) -> None:
        if not rejected:
            return
        letters = self.sink.dead_letters
        refused = [Refused(item.raw, item.reason, item.line) for item in rejected]
        letters.write_many(source=source or rejected[0].source, cluster=cluster, refused=refused)
        letters.flush()

    def accept(self, batch: Batch, cluster: str | None = None, *, source: str = "") -> Outcome:
        """Store a batch durably (returns after the sink's acknowledgement; raises when it could not)."""
        name = self.cluster_of(batch, cluster)
        redacted = self._redact(batch, source)
        result = self.sink.append(name, batch.events, batch.raws)
        self._dead_letter(name, batch.rejected, source)
        return Outcome(name, result.accepted, result.duplicates, len(batch.rejected), redacted)

    async def accept_async(self, batch: Batch, cluster: str | None = None, *, source: str = "") -> Outcome:
        """`accept` for an event loop: redaction and dead letters run in a worker thread."""
        name = self.cluster_of(batch, cluster)
        redacted = await asyncio.to_thread(self._redact, batch, source) if self.redact else 0
        result = await self.sink.append_async(name, batch.events, batch.raws)
        if batch.rejected:
            await asyncio.to_thread(self._dead_letter, name, batch.rejected, source)
        return Outcome(name, result.accepted, result.duplicates, len(batch.rejected), redacted)


def _redacted(item: Rejection) -> Rejection:
    """A rejection whose bytes have their secret values replaced (dead letters never hold them)."""
    if not item.raw:
        return item
    cleaned, findings = redact_bytes(item.raw, item.source)
    return item if not findings else Rejection(item.source, item.line, item.reason, cleaned)
