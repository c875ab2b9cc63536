"""The write-ahead log: append-only segment files of checksummed records, fsynced by group commit.

A record is one batch (`WalBatch`): `<u32 length><u32 crc32><msgpack payload>`. A batch counts only after
the fsync that covers it; a single sync thread runs one fsync at a time, and each fsync covers every batch
written while the previous one ran (group commit). With a commit interval, fsyncs start at most once per
interval: appends that arrive in between wait for the next one, so the fsync rate is bounded by the interval,
not by the rate of appends (an append after a quiet spell is synced at once).

Recovery keeps every intact record. A torn tail (an incomplete last record: a write cut short by a crash or
`kill -9`, never acknowledged) is truncated silently. Any other damage (a checksum mismatch, an implausible
header) is skipped by resynchronising: the scan moves forward to the next offset where a record with a
plausible length and a matching CRC starts and goes on from there, so one damaged record costs only itself.
A damaged segment is copied aside (`N.wal.damaged`) before it is rewritten, and `kubetrail verify` fails
until that copy is dealt with (docs/storage.md).
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

import msgspec

from kubetrail.store.errors import NotDurableError, StoreError
from kubetrail.store.layout import Layout, fsync_dir

SEGMENT_MAGIC = b"KTWAL01\n"
RECORD_HEADER = struct.Struct("<II")
MAX_RECORD_BYTES = 1 << 30
MIN_RECORD_BYTES = 4
"""The smallest payload a batch encodes to (an empty cluster, time 0, no lines): shorter lengths are damage."""
DAMAGED_SUFFIX = ".damaged"
REPAIR_SUFFIX = ".repair"


class WalBatch(msgspec.Struct, array_like=True):
    """One appended batch: the cluster, when it was received (µs since the epoch) and its events' JSON."""

    cluster: str
    received_us: int
    lines: list[bytes]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(WalBatch)


def encode_record(batch: WalBatch) -> bytes:
    """Frame a batch as one WAL record."""
    payload = _encoder.encode(batch)
    return RECORD_HEADER.pack(len(payload), zlib.crc32(payload)) + payload


@dataclass(frozen=True)
class Damage:
    """A run of bytes that holds no intact record, skipped by recovery (not a torn tail).

    `records` counts the damaged records the run held as far as their headers tell; when the headers are
    themselves damaged it is a lower bound (`exact` is False). A damaged segment header counts no record.
    """

    offset: int
    size: int
    records: int
    exact: bool
    reason: str

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def where(self) -> str:
        return f"bytes {self.offset}-{self.end - 1}"

    def __str__(self) -> str:
        return f"{self.where} ({_count_records(self.records, exact=self.exact)}: {self.reason})"


def _count_records(records: int, *, exact: bool) -> str:
    return f"{'' if exact else 'at least '}{records} record{'' if records == 1 else 's'}"


@dataclass
class SegmentScan:
    """What a segment holds: its intact records, the damaged runs skipped between them, and any torn tail.

    A torn tail is an incomplete last record, what a crash in the middle of a write leaves: it was never
    acknowledged, so recovery cuts it silently. Anything else that is not an intact record is `damage`.
    """

    path: Path
    batches: list[WalBatch] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    """The byte range of each intact record, in the order of `batches`."""
    size: int = 0
    damage: list[Damage] = field(default_factory=list)
    torn_at: int = -1
    """Where the torn tail starts (-1: none)."""
    torn_reason: str = ""
    kept: Path | None = None
    """With `repair`: the copy of the damaged segment kept before it was rewritten."""

    @property
    def torn(self) -> bool:
        return self.torn_at >= 0

    @property
    def damaged(self) -> bool:
        return bool(self.damage)

    @property
    def valid_bytes(self) -> int:
        """The size of the segment once repaired: its header and its intact records."""
        if self.size == 0 or self.torn_at == 0:
            return 0
        return len(SEGMENT_MAGIC) + sum(end - start for start, end in self.spans)

    @property
    def skipped_bytes(self) -> int:
        return sum(item.size for item in self.damage)

    @property
    def skipped_records(self) -> int:
        return sum(item.records for item in self.damage)

    def damage_summary(self) -> str:
        """One sentence for logs and `verify`: how many bytes and records were skipped, and where."""
        if not self.damage:
            return ""
        records = _count_records(self.skipped_records, exact=all(item.exact for item in self.damage))
        skipped = f"skipped {self.skipped_bytes} damaged bytes ({records})"
        if len(self.damage) == 1:
            return f"{skipped} at {self.damage[0].where}: {self.damage[0].reason}"
        return f"{skipped} in {len(self.damage)} runs: " + "; ".join(str(item) for item in self.damage)

    @property
    def problem(self) -> str:
        """Everything wrong with the segment, or "" when it is intact."""
        parts = [f"damaged {item}" for item in self.damage]
        if self.torn:
            parts.append(self.torn_reason)
        return "; ".join(parts)


# A record's payload is a msgpack array (WalBatch is array_like): the byte a record's payload starts with.
# Resynchronising looks for a valid record only where one is followed by this, then checks length and CRC.
_ARRAY_START = re.compile(rb"[\x90-\x9f\xdc\xdd]")


def _record_at(data: bytes, view: memoryview, offset: int) -> WalBatch | tuple[str, bool]:
    """The intact record at `offset`, or why there is none and whether it could be a torn last record."""
    header = RECORD_HEADER.size
    left = len(data) - offset
    if left < header:
        return f"incomplete record header ({left} of {header} bytes)", True
    length, crc = RECORD_HEADER.unpack_from(data, offset)
    if length < MIN_RECORD_BYTES or length > MAX_RECORD_BYTES:
        return f"implausible record length {length}", False
    if length > left - header:
        return f"incomplete record (needs {length} bytes, {left - header} left)", True
    payload = view[offset + header : offset + header + length]
    if zlib.crc32(payload) != crc:
        return "checksum mismatch", False
    try:
        return _decoder.decode(payload)
    except msgspec.DecodeError:
        return "undecodable record", False


def _resync(data: bytes, view: memoryview, start: int) -> int | None:
    """The first offset at or after `start` where an intact record begins (plausible length, matching CRC)."""
    header = RECORD_HEADER.size
    position = start + header
    while True:
        found = _ARRAY_START.search(data, position)
        if found is None:
            return None
        candidate = found.start() - header
        if isinstance(_record_at(data, view, candidate), WalBatch):
            return candidate
        position = found.start() + 1


def _is_torn_tail(data: bytes, view: memoryview, offset: int) -> bool:
    """Whether the bytes from `offset` to the end are an incomplete record, not a complete one damaged.

    A crash cuts a record short but leaves its header intact; when the bytes that follow are exactly a
    payload matching the header's CRC, the record is complete and its length field is what was damaged.
    """
    header = RECORD_HEADER.size
    if len(data) - offset < header:
        return True
    crc: int = RECORD_HEADER.unpack_from(data, offset)[1]
    return zlib.crc32(view[offset + header :]) != crc


def _damage(data: bytes, start: int, end: int, reason: str, *, first_record: int | None = None) -> Damage:
    """Describe the skipped run `start..end`, counting the records its headers chain through."""
    header = RECORD_HEADER.size
    position = start if first_record is None else first_record
    records = 0
    while position < end:
        records += 1
        if end - position < header:
            break
        length = RECORD_HEADER.unpack_from(data, position)[0]
        if length < MIN_RECORD_BYTES or position + header + length > end:
            break
        position += header + length
    return Damage(start, end - start, records, position == end, reason)


def _scan(path: Path, data: bytes) -> SegmentScan:
    scan = SegmentScan(path=path, size=len(data))
    if not data:
        return scan
    if len(data) < len(SEGMENT_MAGIC) and SEGMENT_MAGIC.startswith(data):
        scan.torn_at = 0
        scan.torn_reason = "segment header is incomplete"
        return scan
    view = memoryview(data)
    offset = len(SEGMENT_MAGIC)
    if not data.startswith(SEGMENT_MAGIC):
        # A damaged segment header hides no record: look for the intact ones after it all the same.
        following = _resync(data, view, 1)
        end = len(data) if following is None else following
        first = len(SEGMENT_MAGIC) if end > len(SEGMENT_MAGIC) else end
        scan.damage.append(_damage(data, 0, end, "bad segment header", first_record=first))
        offset = end
    while offset < len(data):
        found = _record_at(data, view, offset)
        if isinstance(found, WalBatch):
            end = offset + RECORD_HEADER.size + RECORD_HEADER.unpack_from(data, offset)[0]
            scan.batches.append(found)
            scan.spans.append((offset, end))
            offset = end
            continue
        reason, maybe_torn = found
        following = _resync(data, view, offset + 1)
        if following is not None:
            scan.damage.append(_damage(data, offset, following, reason))
            offset = following
            continue
        if maybe_torn and _is_torn_tail(data, view, offset):
            scan.torn_at = offset
            scan.torn_reason = f"torn record at byte {offset}: {reason}"
        else:
            scan.damage.append(_damage(data, offset, len(data), reason))
        break
    return scan


def scan_segment(path: Path, *, repair: bool = False) -> SegmentScan:
    """Read every intact record, skipping damaged runs between them (resynchronising on the next valid record).

    With `repair`: a torn tail is truncated; a damaged segment is first copied aside (`N.wal.damaged`,
    fsynced) and then rewritten atomically to hold exactly its intact records (`scan.kept` names the copy).
    """
    data = path.read_bytes()
    scan = _scan(path, data)
    if repair and scan.damaged:
        scan.kept = _keep_copy(path, data)
        _rewrite(path, data, scan.spans)
    elif repair and scan.torn:
        _truncate(path, scan.torn_at)
    return scan


def damaged_copies(directory: Path) -> list[Path]:
    """The copies of damaged segments kept in a WAL directory, oldest segment first."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"*{DAMAGED_SUFFIX}"))


def _keep_copy(path: Path, data: bytes) -> Path:
    """Copy a damaged segment aside before it is repaired; an earlier copy with other bytes is never replaced."""
    number = 1
    while True:
        name = f"{path.name}{DAMAGED_SUFFIX}" if number == 1 else f"{path.name}.{number}{DAMAGED_SUFFIX}"
        keep = path.with_name(name)
        if not keep.exists():
            break
        if keep.read_bytes() == data:  # a repair interrupted after the copy: the same damage
            return keep
        number += 1
    _write_atomically(keep, [data])
    return keep


def _rewrite(path: Path, data: bytes, spans: list[tuple[int, int]]) -> None:
    """Replace a segment by its header and intact records."""
    view = memoryview(data)
    _write_atomically(path, [SEGMENT_MAGIC, *(view[start:end] for start, end in spans)])


def _write_atomically(path: Path, chunks: list[bytes | memoryview]) -> None:
    """Write a private file under a temporary name, fsync it, rename it into place and fsync the directory."""
    temporary = path.with_name(path.name + REPAIR_SUFFIX)
    fd = os.open(temporary, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    try:
        for chunk in chunks:
            _write_fully(fd, chunk)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    fsync_dir(path.parent)


def _write_fully(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _truncate(path: Path, length: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, length)
        os.fsync(fd)
    finally:
        os.close(fd)


class FileOps:
    """The system calls the WAL makes; tests substitute a subclass to inject failures such as ENOSPC."""

    def write(self, fd: int, data: bytes | memoryview) -> int:
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def truncate(self, fd: int, length: int) -> None:
        os.ftruncate(fd, length)


FailureCallback = Callable[[int, int], None]


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class WalWriter:
    """Appends records to the current segment and makes them durable with group commit.

    `append` must be called by one thread at a time (the store holds its lock); `wait` and `future` may be
    used from any thread or event loop. Sequence numbers start at 1 and count records of this writer.
    """

    def __init__(
        self,
        layout: Layout,
        *,
        next_segment_id: int,
        file_ops: FileOps | None = None,
        on_failure: FailureCallback | None = None,
        commit_interval: float = 0.0,
    ) -> None:
        """`commit_interval`: seconds from the start of one fsync to the start of the next, at least."""
        self._layout = layout
        self._interval = max(0.0, commit_interval)
        self._last_sync = float("-inf")
        self._idle = False
        """The sync thread waits for a record to be written (only then does an append need to wake it)."""
        self.fsyncs = 0
        """fsync rounds run so far (one per group of records, whatever the number of segments it covers)."""
        self._ops = file_ops or FileOps()
        self._on_failure = on_failure
        self._cond = threading.Condition()
        self._written = 0
        self._resolved = 0
        self._durable = 0
        self._failed: list[tuple[int, int, str]] = []
        self._retired: list[int] = []
        self._async_waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closing = False
        self._broken = False
        self._fd = -1
        self.segment_id = next_segment_id - 1
        self.segment_bytes = 0
        self.segment_started = 0.0
        self.segment_last_seq = 0
        self.fsync_seconds: list[float] = []
        self._open_segment(next_segment_id)
        self._thread = threading.Thread(target=self._sync_loop, name="kubetrail-wal-sync", daemon=True)
        self._thread.start()

    @property
    def durable_seq(self) -> int:
        return self._durable

    @property
    def written_seq(self) -> int:
        return self._written

    def _open_segment(self, segment_id: int) -> None:
        path = self._layout.wal_segment(segment_id)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_APPEND, 0o600)
        except OSError as error:
            raise NotDurableError(f"cannot create a WAL segment: {error.strerror}", path=str(path)) from error
        try:
            self._write_all(fd, SEGMENT_MAGIC)
            fsync_dir(path.parent)
        except OSError as error:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise NotDurableError(f"cannot start a WAL segment: {error.strerror}", path=str(path)) from error
        self._fd = fd
        self.segment_id = segment_id
        self.segment_bytes = len(SEGMENT_MAGIC)
        self.segment_started = time.monotonic()
        self._broken = False

    def _write_all(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._ops.write(fd, view)
            view = view[written:]

    def rotate(self) -> int:
        """Start a new segment; returns the id of the one just closed (its fd closes after its last fsync)."""
        closed = self.segment_id
        with self._cond:
            if self._fd >= 0:
                self._retired.append(self._fd)
                self._fd = -1
            self._cond.notify_all()
        self._open_segment(closed + 1)
        return closed

    def append(self, record: bytes) -> int:
        """Write one framed record; returns its sequence number. Durable only once `wait(seq)` returns."""
        if self._closing:
            raise NotDurableError("the store is closed", hint="reopen the store")
        if self._broken or self._fd < 0:
            self.rotate()
        offset = self.segment_bytes
        try:
            self._write_all(self._fd, record)
        except OSError as error:
            try:
                self._ops.truncate(self._fd, offset)
            except OSError:
                self._broken = True
            raise NotDurableError(
                f"cannot write to the WAL: {error.strerror or error}",
                path=str(self._layout.wal_segment(self.segment_id)),
                hint="free disk space; the sender should retry",
            ) from error
        self.segment_bytes = offset + len(record)
        with self._cond:
            self._written += 1
            seq = self._written
            if self._idle:  # otherwise the sync thread is in an fsync or its interval and will see this record
                self._cond.notify_all()
        self.segment_last_seq = seq
        return seq

    def _failure_for(self, seq: int) -> str | None:
        for low, high, reason in self._failed:
            if low <= seq <= high:
                return reason
        return None

    def wait(self, seq: int, timeout: float | None = None) -> None:
        """Block until record `seq` (and every one before it) is durable; raise NotDurableError if it cannot be."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._resolved >= seq or self._closed_unresolved(seq), timeout):
                raise NotDurableError("timed out waiting for the WAL fsync")
            reason = self._failure_for(seq) if self._resolved >= seq else "the store closed before the fsync"
        if reason is not None:
            raise NotDurableError(f"the batch was not made durable: {reason}", hint="the sender should retry")

    def _closed_unresolved(self, seq: int) -> bool:
        return self._closing and not self._thread.is_alive() and self._resolved < seq

    def future(self, seq: int, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        """An asyncio future that completes when record `seq` is durable (or fails with NotDurableError)."""
        future: asyncio.Future[None] = loop.create_future()
        with self._cond:
            if self._resolved >= seq:
                reason = self._failure_for(seq)
                _settle(future, None if reason is None else NotDurableError(f"not made durable: {reason}"))
            else:
                self._async_waiters.append((seq, loop, future))
        return future

    def _sync_loop(self) -> None:
        while True:
            with self._cond:
                while self._written == self._resolved and not self._retired and not self._closing:
                    self._idle = True
                    self._cond.wait()
                self._idle = False
                if self._closing and self._written == self._resolved and not self._retired:
                    break
                # group commit: gather the appends that arrive until the interval since the last fsync is over
                deadline = self._last_sync + self._interval
                while not self._closing and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
                target = self._written
                low = self._resolved + 1
                retired, self._retired = self._retired, []
                current = self._fd
            error: OSError | None = None
            self._last_sync = time.monotonic()
            self.fsyncs += 1
            started = time.perf_counter()
            for fd in [*retired, current]:
                if fd < 0:
                    continue
                try:
                    self._ops.fsync(fd)
                except OSError as problem:
                    error = problem
            for fd in retired:
                os.close(fd)
            self._record_latency(time.perf_counter() - started)
            if error is not None and low <= target and self._on_failure is not None:
                self._on_failure(low, target)
            self._resolve(low, target, error)

    def _record_latency(self, seconds: float) -> None:
        self.fsync_seconds.append(seconds)
        if len(self.fsync_seconds) > 4096:
            del self.fsync_seconds[:2048]

    def _resolve(self, low: int, target: int, error: OSError | None) -> None:
        with self._cond:
            if error is not None:
                if low <= target:
                    self._failed.append((low, target, f"fsync failed: {error.strerror or error}"))
                self._broken = True
            else:
                self._durable = max(self._durable, target)
            self._resolved = max(self._resolved, target)
            ready = [waiter for waiter in self._async_waiters if waiter[0] <= self._resolved]
            self._async_waiters = [waiter for waiter in self._async_waiters if waiter[0] > self._resolved]
            outcomes = [(loop, future, self._failure_for(seq)) for seq, loop, future in ready]
            self._cond.notify_all()
        for loop, future, reason in outcomes:
            outcome = None if reason is None else NotDurableError(f"not made durable: {reason}")
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, outcome)

    def close(self) -> None:
        """Flush and fsync everything written, stop the sync thread and close the segment."""
        with self._cond:
            self._closing = True
            if self._fd >= 0:
                self._retired.append(self._fd)
                self._fd = -1
            self._cond.notify_all()
        self._thread.join()
        with self._cond:
            pending = [waiter for waiter in self._async_waiters]
            self._async_waiters = []
        for _seq, loop, future in pending:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, NotDurableError("the store closed"))


def check_record_size(record: bytes) -> None:
    """Refuse records the reader would treat as corrupt."""
    if len(record) - RECORD_HEADER.size > MAX_RECORD_BYTES:
        raise StoreError(f"a batch of {len(record)} bytes is larger than the WAL's 1 GiB record limit")
