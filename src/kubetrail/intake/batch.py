"""What the intake yields: batches of typed events (with the JSON each came from) and located rejections."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubetrail.errors import KubetrailError

if TYPE_CHECKING:
    from kubetrail.model import Event

BATCH_EVENTS = 2000
"""Events per batch at most: large enough to amortise a store append, small enough to keep memory flat."""


class IntakeError(KubetrailError):
    """Input that cannot be read at all: a missing file, an unreadable gzip stream, an unknown format."""

    def __init__(self, message: str, *, source: str = "", hint: str = "") -> None:
        self.message = message
        self.source = source
        self.hint = hint
        super().__init__(f"{source}: {message}" if source else message)


@dataclass(frozen=True, slots=True)
class Rejection:
    """One input record that is not a valid audit event: where it was, why, and its bytes (for dead letters)."""

    source: str
    line: int | None
    reason: str
    raw: bytes = b""

    @property
    def where(self) -> str:
        """`file:line`, or just the file when the record has no line of its own."""
        return self.source if self.line is None else f"{self.source}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class Batch:
    """Up to BATCH_EVENTS events of one cluster (None: the caller's default), with what was refused or skipped.

    `raws[i]` is the JSON `events[i]` was decoded from when there was one (else None: encode the event).
    `skipped` counts records that are not audit events at all (another log category), by reason.
    `position` is how far into its input (compressed bytes) the batch ends, for progress bars.
    """

    cluster: str | None = None
    events: list[Event] = field(default_factory=list)
    raws: list[bytes | None] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    position: int = 0

    def add(self, event: Event, raw: bytes | None) -> None:
        self.events.append(event)
        self.raws.append(raw)

    def reject(self, source: str, line: int | None, reason: str, raw: bytes = b"") -> None:
        self.rejected.append(Rejection(source, line, reason, raw))

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] += count

    @property
    def full(self) -> bool:
        return len(self.events) + len(self.rejected) >= BATCH_EVENTS

    @property
    def empty(self) -> bool:
        return not self.events and not self.rejected and not self.skipped


SHOWN = 20
"""Refused records a tally keeps by location; the rest are counted."""


def short_reason(reason: str) -> str:
    """A reason without positions, so that equal problems are counted together."""
    text = reason
    for marker in (" (byte ", " at byte ", " - at line "):
        cut = text.find(marker)
        if cut >= 0:
            text = text[:cut]
    return text


@dataclass
class Tally:
    """What reading some inputs came to: events, refused records (the first SHOWN by location), skipped ones."""

    files: int = 0
    events: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    shown: list[Rejection] = field(default_factory=list)
    clusters: Counter[str] = field(default_factory=Counter)

    def count(self, batch: Batch) -> None:
        self.events += len(batch.events)
        if batch.cluster is not None and batch.events:
            self.clusters[batch.cluster] += len(batch.events)
        self.skipped.update(batch.skipped)
        for item in batch.rejected:
            self.reject(item)

    def reject(self, item: Rejection) -> None:
        self.rejected += 1
        self.reasons[short_reason(item.reason)] += 1
        if len(self.shown) < SHOWN:
            self.shown.append(item)

    def lines(self) -> list[str]:
        """The report every command prints: refused records by location, then counts of the rest."""
        lines = [f"warning: refused {item}" for item in self.shown]
        if self.rejected > len(self.shown):
            lines.append(f"warning: {self.rejected - len(self.shown):,} more records refused")
        skipped = sum(self.skipped.values())
        if skipped:
            reasons = "; ".join(f"{reason}: {count:,}" for reason, count in self.skipped.most_common(5))
            lines.append(f"note: {skipped:,} records skipped, not audit events ({reasons})")
        return lines

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "events": self.events,
            "rejected": self.rejected,
            "rejected_reasons": dict(self.reasons.most_common()),
            "skipped": sum(self.skipped.values()),
            "skipped_reasons": dict(self.skipped.most_common()),
        }
