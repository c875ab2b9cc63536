"""What every reader yields: batches of decoded events (with their raw JSON) and the inputs it refused."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from kubetrail.errors import KubetrailError
from kubetrail.model import Event

GZIP_MAGIC = b"\x1f\x8b"
BATCH_EVENTS = 2000


class ReaderError(KubetrailError):
    """An input that cannot be read at all (missing, unreadable, unknown format)."""

    def __init__(self, message: str, *, source: str = "", hint: str = "") -> None:
        self.source = source
        self.hint = hint
        super().__init__(f"{source}: {message}" if source else message)


@dataclass(frozen=True)
class Rejected:
    """One input record that is not a valid audit event, and why; it goes to the dead-letter file."""

    source: str
    line: int | None
    reason: str
    raw: bytes


@dataclass
class ReadBatch:
    """Up to BATCH_EVENTS events of one cluster (None: the caller's default), with what was refused or skipped.

    `raws[i]` is the JSON `events[i]` came from when it was one, else None (the event is re-encoded).
    `skipped` counts records that are not audit events at all (other log categories), by reason.
    `position` is how many bytes of the (possibly compressed) file have been consumed, for progress bars.
    """

    cluster: str | None = None
    events: list[Event] = field(default_factory=list)
    raws: list[bytes | None] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    position: int = 0

    def add(self, event: Event, raw: bytes | None) -> None:
        self.events.append(event)
        self.raws.append(raw)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    @property
    def full(self) -> bool:
        return len(self.events) >= BATCH_EVENTS or len(self.rejected) >= BATCH_EVENTS

    @property
    def empty(self) -> bool:
        return not self.events and not self.rejected and not self.skipped


class Input:
    """An open input file: `stream` yields decompressed bytes, `position` reports compressed bytes consumed."""

    def __init__(self, raw: BinaryIO, stream: BinaryIO, source: str) -> None:
        self._raw = raw
        self.stream = stream
        self.source = source

    @property
    def position(self) -> int:
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0


@contextmanager
def open_input(path: Path) -> Iterator[Input]:
    """Open a file for reading, transparently un-gzipping it (detected by its magic bytes, not its name)."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as error:
        raise ReaderError(error.strerror or str(error), source=str(path)) from error
    try:
        buffered = io.BufferedReader(raw) if not isinstance(raw, io.BufferedReader) else raw
        stream: BinaryIO = buffered
        if buffered.peek(2)[:2] == GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[assignment]
        yield Input(buffered, stream, str(path))
    finally:
        raw.close()


def head(path: Path, size: int = 65536) -> bytes:
    """The first `size` decompressed bytes of a file (for format detection)."""
    with open_input(path) as source:
        try:
            return source.stream.read(size)
        except (OSError, EOFError) as error:
            raise ReaderError(f"cannot read: {error}", source=str(path)) from error


def short_reason(message: str) -> str:
    """A reason without positions, so that the summary groups equal problems together."""
    text = message
    for marker in (" (byte ", " at byte ", " - at line "):
        cut = text.find(marker)
        if cut >= 0:
            text = text[:cut]
    return text
