"""The intake's one entry point over bytes: inflate, tell the format, decode into batches.

Pure: it reads only the stream it is given and touches no file, clock or network. A stream that cannot be
read at all (gzip that is corrupt from its first byte, a format nobody can tell) raises IntakeError; damage
later on keeps what came before it and ends with a rejection saying where the damage starts.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

import msgspec

from kubetrail.intake.aks import decode_aks
from kubetrail.intake.batch import Batch, IntakeError
from kubetrail.intake.eks import decode_eks
from kubetrail.intake.gke import decode_gke
from kubetrail.intake.inflate import GzipError, InflateLimitError, is_gzip, open_gzip
from kubetrail.intake.native import decode_native
from kubetrail.intake.sniff import FORMATS, SNIFF_BYTES, Format, sniff

CHUNK = 64 << 10
Decoder = Callable[[Iterable[bytes], str], Iterator[Batch]]
DECODERS: dict[Format, Decoder] = {
    Format.NATIVE: decode_native,
    Format.EKS: decode_eks,
    Format.GKE: decode_gke,
    Format.AKS: decode_aks,
}


class _Prefixed(io.RawIOBase):
    """`prefix`, then the rest of `stream` (so that sniffing needs no seek)."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        super().__init__()
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._prefix:
            count = min(len(view), len(self._prefix))
            view[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        data = self._stream.read(len(view))
        view[: len(data)] = data
        return len(data)


class _Chunks:
    """The chunks of a stream. An inflated stream's are cut at line ends, because damage can end it: the partial
    line before the damage is dropped (it is the damaged record) and the damage is remembered with the line it
    starts on. A plain stream cannot be damaged; its chunks pass as read (the decoders split lines themselves)."""

    def __init__(self, head: bytes, stream: BinaryIO, damage: IntakeError | None = None, *, inflated: bool) -> None:
        self.head = head
        self.stream = stream
        self.damage = damage
        self.inflated = inflated
        self.newlines = 0

    def _whole_lines(self, data: bytes, pending: bytes) -> tuple[bytes, bytes]:
        data = pending + data if pending else data
        cut = data.rfind(b"\n") + 1
        self.newlines += data.count(b"\n", 0, cut)
        return data[:cut], data[cut:]

    def __iter__(self) -> Iterator[bytes]:
        if not self.inflated:
            yield self.head
            yield from iter(lambda: self.stream.read(CHUNK), b"")
            return
        ready, pending = self._whole_lines(self.head, b"")
        if ready:
            yield ready
        while self.damage is None:
            try:
                chunk = self.stream.read(CHUNK)
            except (GzipError, InflateLimitError) as error:
                self.damage = error
                return
            if not chunk:
                break
            ready, pending = self._whole_lines(chunk, pending)
            if ready:
                yield ready
        if pending and self.damage is None:
            yield pending


def read_head(stream: BinaryIO, size: int = SNIFF_BYTES) -> tuple[bytes, IntakeError | None]:
    """Up to `size` bytes of the stream, and the damage that stopped it early (what came before is kept)."""
    parts: list[bytes] = []
    got = 0
    while got < size:
        try:
            chunk = stream.read1(size - got)  # type: ignore[attr-defined]
        except (GzipError, InflateLimitError) as error:
            return b"".join(parts), error
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts), None


def _looks_like_json(head: bytes) -> bool:
    """Blank input, or input whose first line is JSON of some kind: the native decoder says what is wrong."""
    text = head.lstrip()
    if not text or text[:1] in (b"{", b"["):
        return True
    try:
        msgspec.json.decode(text.split(b"\n", 1)[0])
    except (msgspec.DecodeError, RecursionError):
        return False
    return True


def parse_format(value: str | Format | None) -> Format | None:
    """`auto` (or None) → None; a format name → its Format; anything else → IntakeError."""
    if value is None or value == "auto":
        return None
    try:
        return Format(value)
    except ValueError:
        raise IntakeError(f"unknown format {value!r}", hint=f"use auto or one of {', '.join(FORMATS)}") from None


def read_stream(stream: BinaryIO, *, source: str, format: str | Format | None = None) -> Iterator[Batch]:
    """Batches of events from a byte stream in any accepted format (gzip inflated, the format sniffed)."""
    chosen = parse_format(format)
    first = stream.read(2)
    if not first:
        return
    inflated: BinaryIO = io.BufferedReader(_Prefixed(first, stream), buffer_size=CHUNK)
    if is_gzip(first):
        inflated = open_gzip(inflated, source=source)
    head, damage = read_head(inflated)
    if damage is not None and not head:
        raise IntakeError(f"cannot read it: {damage.message}", source=source, hint="is the file complete?")
    if not head:
        return
    if chosen is None:
        chosen = sniff(head) or (Format.NATIVE if _looks_like_json(head) else None)
        if chosen is None:
            raise IntakeError(
                "cannot tell the format of this input",
                source=source,
                hint=f"pass --format ({', '.join(FORMATS)}); audit logs are JSON, one Event per line",
            )
    chunks = _Chunks(head, inflated, damage, inflated=is_gzip(first))
    yield from DECODERS[chosen](chunks, source)
    if chunks.damage is not None:
        damaged = Batch()
        damaged.reject(source, chunks.newlines + 1, chunks.damage.message)
        yield damaged


def read_bytes(data: bytes, *, source: str = "<input>", format: str | Format | None = None) -> Iterator[Batch]:
    """`read_stream` over bytes in memory."""
    return read_stream(io.BytesIO(data), source=source, format=format)
