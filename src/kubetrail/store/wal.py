"""The write-ahead log: append-only segment files of checksummed records, fsynced by group commit.

A record is one batch (`WalBatch`): `<u32 length><u32 crc32><msgpack payload>`. A batch counts only after
the fsync that covers it; a single sync thread runs one fsync at a time, and each fsync covers every batch
written while the previous one ran (group commit). Recovery keeps every complete record and truncates a
torn tail (a write cut short by a crash or `kill -9`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from kubetrail.store.errors import NotDurableError, StoreError
from kubetrail.store.layout import Layout, fsync_dir

SEGMENT_MAGIC = b"KTWAL01\n"
RECORD_HEADER = struct.Struct("<II")
MAX_RECORD_BYTES = 1 << 30


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


@dataclass
class SegmentScan:
    """What a segment holds: its complete records, and where (if anywhere) it stops being valid."""

    path: Path
    batches: list[WalBatch] = field(default_factory=list)
    size: int = 0
    valid_bytes: int = 0
    problem: str = ""

    @property
    def torn(self) -> bool:
        return self.valid_bytes < self.size


def scan_segment(path: Path, *, repair: bool = False) -> SegmentScan:
    """Read every complete record; with `repair`, truncate whatever follows the last one (a torn tail)."""
    data = path.read_bytes()
    scan = SegmentScan(path=path, size=len(data))
    if not data:
        return scan
    if len(data) < len(SEGMENT_MAGIC) or not data.startswith(SEGMENT_MAGIC):
        if SEGMENT_MAGIC.startswith(data):
            scan.problem = "segment header is incomplete"
        else:
            scan.problem = "not a kubetrail WAL segment (bad header)"
        if repair and SEGMENT_MAGIC.startswith(data):
            _truncate(path, 0)
        return scan
    offset = len(SEGMENT_MAGIC)
    header = RECORD_HEADER.size
    while offset < len(data):
        if offset + header > len(data):
            scan.problem = f"torn record header at byte {offset}"
            break
        length, crc = RECORD_HEADER.unpack_from(data, offset)
        end = offset + header + length
        if length > MAX_RECORD_BYTES or end > len(data):
            scan.problem = f"torn record at byte {offset} (needs {length} bytes, {len(data) - offset - header} left)"
            break
        payload = data[offset + header : end]
        if zlib.crc32(payload) != crc:
            scan.problem = f"checksum mismatch in the record at byte {offset}"
            break
        try:
            scan.batches.append(_decoder.decode(payload))
        except msgspec.DecodeError:
            scan.problem = f"undecodable record at byte {offset}"
            break
        offset = end
    scan.valid_bytes = offset
    if repair and scan.torn:
        _truncate(path, offset)
    return scan


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
    ) -> None:
        self._layout = layout
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
                    self._cond.wait()
                if self._closing and self._written == self._resolved and not self._retired:
                    break
                target = self._written
                low = self._resolved + 1
                retired, self._retired = self._retired, []
                current = self._fd
            error: OSError | None = None
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
