"""The `Store` facade: append durably, seal to Parquet, apply retention, query with DuckDB.

Typical use (the receiver, the tailer and `kubetrail ingest` all do this)::

    store = Store.open("/var/lib/kubetrail")
    result = store.append("prod", events, raw_lines)   # returns once the batch is fsynced (or raises)
    result = await store.append_async("prod", events)   # the same from an event loop
    connection = store.query_connection()               # DuckDB with the `events` view
    store.close()                                       # seals what is left

`append` is thread-safe; concurrent appends share fsyncs (group commit). It raises `NotDurableError` when the
batch cannot be made durable (disk full, I/O error, closed store): nothing of it is acknowledged, and a retry
is safe because events are deduplicated on (cluster, auditID, stage).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from kubetrail.model import Event, EventDecodeError, decode_event
from kubetrail.store.alerts import register_alerts_view
from kubetrail.store.columns import ROW_SCHEMA, Rows, build_rows
from kubetrail.store.deadletter import DeadLetterWriter
from kubetrail.store.dedup import DedupIndex, Partition
from kubetrail.store.errors import NotDurableError, StoreError, StoreLockedError
from kubetrail.store.layout import TMP_SUFFIX, Layout, fsync_dir
from kubetrail.store.manifest import FileRecord, Manifest, ManifestState, file_sha256, parse_lines
from kubetrail.store.retention import RetentionPlan, plan_retention
from kubetrail.store.views import connect
from kubetrail.store.wal import (
    SEGMENT_MAGIC,
    FileOps,
    WalBatch,
    WalWriter,
    check_record_size,
    encode_record,
    scan_segment,
)

log = logging.getLogger(__name__)

CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class StoreOptions:
    """Tuning knobs; the defaults suit one cluster at thousands of events per second."""

    segment_bytes: int = 64 << 20
    segment_events: int = 50_000
    """A WAL segment is closed (and sealed) after this many events too, so sealing starts before memory grows."""
    max_unsealed_events: int = 200_000
    """Acknowledged events held in memory until sealed, at most: beyond, `append` waits for sealing and
    `append_async` refuses the batch (NotDurableError: the receiver answers 503, the sender retries)."""
    max_unsealed_bytes: int = 192 << 20
    """The same bound on the bytes of their JSON (the tail holds each event once, as Arrow strings), so the
    memory the tail takes is bounded whatever the rate and the size of the events."""
    seal_age_seconds: float = 600.0
    background_seal: bool = True
    compression_level: int = 3
    dedup_max_keys: int = 16_000_000
    file_ops: FileOps | None = None
    commit_interval: float = 0.005
    """WAL group commit: fsyncs start at most this often (seconds); appends in between share the next one."""


@dataclass(frozen=True)
class AppendResult:
    """What one append stored: new events, duplicates skipped, and the WAL sequence number that covers it."""

    accepted: int
    duplicates: int
    seq: int


@dataclass(frozen=True)
class Durable:
    """The events of one append that are newly stored (duplicates left out), after their fsync."""

    cluster: str
    events: list[Event]
    raws: list[bytes | None]
    record: bytes | None = None
    """The framed WAL record that holds exactly these events as stored (`wal.WalBatch`), when there is one."""


INLINE_APPEND_EVENTS = 2_000
"""`append_async` writes batches up to this size on the event loop (a webhook batch is 400 by default)."""
ROOM_WAIT_SECONDS = 120.0
"""How long a blocking append waits for sealing to make room before it gives up."""

DurableListener = Callable[[Durable], None]
"""Told about every append that stored something new, once it is durable (e.g. detection's queue)."""


@dataclass(frozen=True)
class StoreStats:
    """Counts for `/metrics`, summaries and the bench."""

    sealed_files: int
    sealed_rows: int
    sealed_bytes: int
    tail_rows: int
    wal_segments: int
    dedup_keys: int
    dead_letters: int


@dataclass
class _TailBatch:
    """One append's new rows. Once in the tail (`settle`), only the Arrow batch is kept: the JSON once, as
    Arrow strings, plus 20 bytes of time, key, day and cluster a row, whatever the rate."""

    seq: int
    rows: Rows
    _partitions: list[Partition] | None = None
    _arrow: pa.RecordBatch | None = None

    @property
    def partitions(self) -> list[Partition]:
        """(day, cluster) of each row."""
        return self._partitions if self._partitions is not None else self.rows.partitions()

    @property
    def keys(self) -> list[int]:
        return self.rows.keys

    @property
    def nbytes(self) -> int:
        return self.rows.nbytes

    def arrow(self) -> pa.RecordBatch:
        """The rows in ROW_SCHEMA, converted once and cached (the rows never change)."""
        if self._arrow is None:
            self._arrow = self.rows.record_batch()
        return self._arrow

    def settle(self) -> None:
        """Drop what only writing the batch needed (the bytes of each line, the per-row partitions)."""
        self.arrow()
        self.rows.release_lines()
        self._partitions = None


@dataclass
class _TailSegment:
    """The acknowledged rows of one WAL segment, kept in memory (as Arrow batches) until they are sealed."""

    segment_id: int
    batches: list[_TailBatch] = field(default_factory=list)
    last_seq: int = 0
    started: float = field(default_factory=time.monotonic)
    rows: int = 0
    nbytes: int = 0

    def add(self, item: _TailBatch) -> None:
        item.settle()
        self.batches.append(item)
        self.rows += len(item.rows)
        self.nbytes += item.nbytes


def check_cluster(cluster: str) -> str:
    """Cluster names become directory names (`cluster=NAME`): letters, digits, `.`, `_`, `-`."""
    if not CLUSTER_NAME.fullmatch(cluster):
        raise StoreError(
            f"invalid cluster name {cluster!r}",
            hint="use letters, digits, '.', '_' or '-' (at most 128 characters, not starting with a symbol)",
        )
    return cluster


@contextlib.contextmanager
def _flock(path: Path, mode: int) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)


class Store:
    """A kubetrail store directory opened for writing (one process at a time) or read-only."""

    def __init__(self, layout: Layout, options: StoreOptions, read_only: bool) -> None:
        self.layout = layout
        self.options = options
        self.read_only = read_only
        self._lock = threading.RLock()
        self._seal_mutex = threading.Lock()
        self._seal_cond = threading.Condition()
        self._room = threading.Condition()
        self._closed = False
        self._lock_fd = -1
        self._tail: list[_TailSegment] = []
        self._wal: WalWriter | None = None
        self._seal_thread: threading.Thread | None = None
        self._seal_error: BaseException | None = None
        self.dead_letters = DeadLetterWriter(layout.deadletter_dir)
        self._manifest: Manifest | None = None
        self._state = ManifestState()
        # The sealed files queries and dedup see; changes together with the tail, under `_lock`.
        self._visible: dict[str, Path] = {}
        self._index = DedupIndex(self._load_keys, max_keys=options.dedup_max_keys)
        self.on_durable: DurableListener | None = None
        """Called after each append's fsync with the events it newly stored (from the appending thread)."""
        self.admit: Callable[[], str | None] | None = None
        """Why new batches must wait now (what `on_durable` feeds is too far behind), or None: an append waits
        for it to clear, `append_async` refuses the batch (NotDurableError: 503, the sender retries)."""

    # ----- opening and recovery -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, options: StoreOptions | None = None, *, read_only: bool = False) -> Store:
        """Open (creating if needed) a store; recovers from a crash: keeps every complete WAL record once."""
        layout = Layout(Path(path))
        store = cls(layout, options or StoreOptions(), read_only)
        if read_only:
            if not layout.root.is_dir():
                raise StoreError("no store here", path=str(layout.root), hint="check --store")
            store._open_read_only()
        else:
            store._open_writable()
        return store

    def _open_writable(self) -> None:
        try:
            self.layout.create()
        except OSError as error:
            raise StoreError(f"cannot create the store: {error.strerror}", path=str(self.layout.root)) from error
        self._lock_fd = os.open(self.layout.writer_lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise StoreLockedError(
                "another process has this store open for writing",
                path=str(self.layout.root),
                hint="stop it first, or send the events to its receiver",
            ) from None
        os.ftruncate(self._lock_fd, 0)
        os.write(self._lock_fd, f"{os.getpid()}\n".encode())
        with _flock(self.layout.manifest_lock, fcntl.LOCK_EX):
            self._manifest = Manifest(self.layout.manifest)
            self._state = self._manifest.state
            self._finish_interrupted_steps()
            self._visible = {relative: self.layout.absolute(relative) for relative in self._state.live}
        # never reuse the id of a segment already sealed (its file may be gone): readers skip sealed ids
        next_id = max(self._state.sealed_wal, default=0) + 1
        for segment_id, path in self.layout.wal_segments():
            self._replay(segment_id, path, repair=True)
            next_id = max(next_id, segment_id + 1)
        self._wal = WalWriter(
            self.layout,
            next_segment_id=next_id,
            file_ops=self.options.file_ops,
            on_failure=self._on_wal_failure,
            commit_interval=self.options.commit_interval,
        )
        self._tail.append(_TailSegment(self._wal.segment_id))
        if self.options.background_seal:
            self._seal_thread = threading.Thread(target=self._seal_loop, name="kubetrail-seal", daemon=True)
            self._seal_thread.start()

    def _open_read_only(self) -> None:
        with _flock(self.layout.manifest_lock, fcntl.LOCK_SH):
            lines, _ = parse_lines(self.layout.manifest)
            for line in lines:
                if line.entry is not None:
                    self._state.apply(line.entry)
            for relative in self._state.live:
                path = self.layout.absolute(relative)
                unfinished = path.with_name(path.name + TMP_SUFFIX)
                self._visible[relative] = unfinished if not path.exists() and unfinished.exists() else path
            for segment_id, path in self.layout.wal_segments():
                if segment_id not in self._state.sealed_wal:
                    self._replay(segment_id, path, repair=False)

    def _finish_interrupted_steps(self) -> None:
        """Complete or undo what a crash interrupted: a seal before or after its manifest entry, a retention."""
        for temporary in self.layout.data_dir.rglob(f"*{TMP_SUFFIX}"):
            final = temporary.with_name(temporary.name[: -len(TMP_SUFFIX)])
            record = self._state.live.get(self.layout.relative(final))
            if record is not None and not final.exists() and file_sha256(temporary) == record.sha256:
                os.replace(temporary, final)
                fsync_dir(final.parent)
            else:
                temporary.unlink()
        for segment_id, path in self.layout.wal_segments():
            if segment_id in self._state.sealed_wal:
                path.unlink()
        for relative in self._state.retired:
            self.layout.absolute(relative).unlink(missing_ok=True)

    def _replay(self, segment_id: int, path: Path, *, repair: bool) -> None:
        # with `repair`, a damaged segment is copied aside (N.wal.damaged) and rewritten with its intact records
        scan = scan_segment(path, repair=repair)
        if scan.damaged:
            after = (
                f"the damaged segment is kept as {scan.kept.name}; `kubetrail verify` fails until it is checked "
                "and removed (docs/storage.md)"
                if scan.kept is not None
                else "the next writer to open the store repairs it"
            )
            level = logging.ERROR if repair else logging.WARNING
            log.log(
                level,
                "%s: WAL damage: %s; recovered %d intact record(s); %s",
                path,
                scan.damage_summary(),
                len(scan.batches),
                after,
            )
        elif scan.problem:
            log.warning("%s: %s; kept %d complete records", path, scan.problem, len(scan.batches))
        segment = _TailSegment(segment_id)
        self._tail.append(segment)
        for wal_batch in scan.batches:
            events: list[Event] = []
            lines: list[bytes] = []
            for line in wal_batch.lines:
                try:
                    events.append(decode_event(line, source=str(path)))
                    lines.append(line)
                except EventDecodeError as error:
                    if not self.read_only:
                        self.dead_letters.write(
                            source=str(path), reason=f"undecodable on replay: {error.message}", raw=line
                        )
            if not events:
                continue
            received = datetime.fromtimestamp(wal_batch.received_us / 1e6, UTC)
            item, _ = self._dedup(build_rows(wal_batch.cluster, events, lines, received=received))
            if item is not None:
                self._index.add(item.partitions, item.keys)
                segment.add(item)

    # ----- appending ------------------------------------------------------------------------------------

    def _dedup(self, rows: Rows) -> tuple[_TailBatch | None, list[bool]]:
        """The rows not stored yet (None when every one is a duplicate), and which rows those are."""
        partitions = rows.partitions()
        fresh = self._index.new_rows(partitions, rows.keys)
        if all(fresh):
            return _TailBatch(0, rows, partitions), fresh
        if not any(fresh):
            return None, fresh
        kept = [part for part, keep in zip(partitions, fresh, strict=True) if keep]
        return _TailBatch(0, rows.select(fresh), kept), fresh

    def _unsealed_bytes_locked(self) -> int:
        return sum(segment.nbytes for segment in self._tail)

    def _unsealed_locked(self) -> int:
        return sum(segment.rows for segment in self._tail)

    def _wait_for_room(self, count: int, *, wait: bool) -> None:
        """Hold the caller until sealing leaves room for `count` more unsealed events (or refuse at once)."""
        limit = self.options.max_unsealed_events
        deadline = time.monotonic() + ROOM_WAIT_SECONDS
        while True:
            with self._lock:
                unsealed = self._unsealed_locked()
                small = self._unsealed_bytes_locked() <= self.options.max_unsealed_bytes
                if unsealed == 0 or (unsealed + count <= limit and small) or self._closed:
                    return
                if len(self._tail) == 1:
                    self._rotate_locked()  # let sealing take the active segment too
            if not wait or time.monotonic() >= deadline:
                raise NotDurableError(
                    f"{unsealed} acknowledged events wait to be sealed (limit {limit}); retry",
                    path=str(self.layout.root),
                )
            with self._seal_cond:
                self._seal_cond.notify_all()
            if not self.options.background_seal:
                self._seal_pending()
                continue
            with self._room:
                self._room.wait(0.5)

    def _wait_for_admission(self, *, wait: bool) -> None:
        """Hold the caller while `admit` gives a reason to (or refuse at once)."""
        deadline = time.monotonic() + ROOM_WAIT_SECONDS
        while self.admit is not None and (reason := self.admit()) is not None:
            if not wait or time.monotonic() >= deadline:
                raise NotDurableError(f"{reason}; retry", path=str(self.layout.root))
            time.sleep(0.05)

    def _write(
        self,
        cluster: str,
        events: Sequence[Event],
        raw_lines: Sequence[bytes | None] | None,
        *,
        wait: bool = True,
    ) -> tuple[AppendResult, int, list[bool], bytes | None]:
        """Write a batch to the WAL (not yet durable): the result, the sequence number to wait for, which are new,
        and the record written (None when nothing was new)."""
        if self.read_only or self._wal is None:
            raise StoreError("the store is open read-only", path=str(self.layout.root))
        check_cluster(cluster)
        if raw_lines is not None and len(raw_lines) != len(events):
            raise StoreError(f"{len(raw_lines)} raw lines for {len(events)} events", hint="pass one raw line per event")
        self._wait_for_room(len(events), wait=wait)
        self._wait_for_admission(wait=wait)
        received = datetime.now(UTC)
        rows = build_rows(cluster, events, raw_lines, received=received)
        received_us = int(received.timestamp() * 1_000_000)
        record = encode_record(WalBatch(cluster, received_us, rows.lines))
        check_record_size(record)
        with self._lock:
            if self._closed:
                raise NotDurableError("the store is closed", path=str(self.layout.root))
            item, fresh = self._dedup(rows)
            if item is None:
                return AppendResult(0, len(events), self._wal.written_seq), self._wal.written_seq, fresh, None
            if len(item.rows) != len(rows):
                record = encode_record(WalBatch(cluster, received_us, item.rows.lines))
            seq = self._wal.append(record)
            item.seq = seq
            self._index.add(item.partitions, item.keys)
            active = self._tail[-1]
            if active.segment_id != self._wal.segment_id:
                active = _TailSegment(self._wal.segment_id)
                self._tail.append(active)
            active.add(item)
            active.last_seq = seq
            if self._wal.segment_bytes >= self.options.segment_bytes or active.rows >= self.options.segment_events:
                self._rotate_locked()
        accepted = len(item.rows)
        return AppendResult(accepted, len(events) - accepted, seq), seq, fresh, record

    def _notify(
        self,
        cluster: str,
        events: Sequence[Event],
        raw_lines: Sequence[bytes | None] | None,
        fresh: list[bool],
        record: bytes | None,
    ) -> None:
        listener = self.on_durable
        if listener is None or not any(fresh):
            return
        raws: Sequence[bytes | None] = raw_lines if raw_lines is not None else [None] * len(events)
        if all(fresh):
            listener(Durable(cluster, list(events), list(raws), record))
            return
        kept = [index for index, keep in enumerate(fresh) if keep]
        listener(Durable(cluster, [events[index] for index in kept], [raws[index] for index in kept], record))

    def append(
        self, cluster: str, events: Sequence[Event], raw_lines: Sequence[bytes | None] | None = None
    ) -> AppendResult:
        """Store events of `cluster` durably; returns after the fsync that covers them.

        `raw_lines[i]` (optional) is the JSON `events[i]` was decoded from; it is stored as is, so fields the
        model does not know survive. Raises NotDurableError when the batch could not be made durable.
        """
        if not events:
            return AppendResult(0, 0, 0)
        result, seq, fresh, record = self._write(cluster, events, raw_lines)
        assert self._wal is not None
        self._wal.wait(seq)
        self._notify(cluster, events, raw_lines, fresh, record)
        return result

    async def append_async(
        self, cluster: str, events: Sequence[Event], raw_lines: Sequence[bytes | None] | None = None
    ) -> AppendResult:
        """`append` for asyncio: the fsync is awaited without holding a thread.

        The write itself (rows, WAL record, page-cache write: about a millisecond for a webhook batch, and it
        never waits for sealing) runs on the loop up to INLINE_APPEND_EVENTS events, in a worker thread beyond:
        a thread hop costs more than it saves when the work holds the GIL anyway.
        """
        import asyncio

        if not events:
            return AppendResult(0, 0, 0)
        if len(events) <= INLINE_APPEND_EVENTS:
            result, seq, fresh, record = self._write(cluster, events, raw_lines, wait=False)
        else:
            result, seq, fresh, record = await asyncio.to_thread(self._write, cluster, events, raw_lines, wait=False)
        assert self._wal is not None
        await self._wal.future(seq, asyncio.get_running_loop())
        self._notify(cluster, events, raw_lines, fresh, record)
        return result

    def dead_letter(self, *, source: str, reason: str, raw: bytes, line: int | None = None, cluster: str = "") -> None:
        """Keep a refused input with the reason (`deadletter/YYYY-MM-DD.ndjson` in the store)."""
        self.dead_letters.write(source=source, reason=reason, raw=raw, line=line, cluster=cluster)

    def _on_wal_failure(self, low: int, high: int) -> None:
        """An fsync failed: forget the rows of records `low..high` so that the senders' retries are stored."""
        with self._lock:
            for segment in self._tail:
                kept: list[_TailBatch] = []
                for item in segment.batches:
                    if low <= item.seq <= high:
                        self._index.discard(item.partitions, item.keys)
                    else:
                        kept.append(item)
                segment.batches = kept
                segment.rows = sum(len(item.rows) for item in kept)
                segment.nbytes = sum(item.nbytes for item in kept)

    # ----- sealing --------------------------------------------------------------------------------------

    def _rotate_locked(self) -> None:
        assert self._wal is not None
        try:
            self._wal.rotate()
        except NotDurableError as error:
            log.warning("cannot start a new WAL segment yet: %s", error)
            return
        self._tail.append(_TailSegment(self._wal.segment_id))
        with self._seal_cond:
            self._seal_cond.notify_all()

    def _sealable(self) -> list[_TailSegment]:
        with self._lock:
            return self._tail[:-1] if self._wal is not None else []

    def _seal_loop(self) -> None:
        while True:
            with self._seal_cond:
                if not self._closed:
                    self._seal_cond.wait(timeout=min(5.0, self.options.seal_age_seconds))
            if self._closed:
                return
            with self._lock:
                active = self._tail[-1] if self._tail else None
                if (
                    active is not None
                    and active.batches
                    and time.monotonic() - active.started >= self.options.seal_age_seconds
                ):
                    self._rotate_locked()
            try:
                self._seal_pending()
                self._seal_error = None
            except (OSError, StoreError) as error:
                self._seal_error = error
                log.warning("sealing failed, will retry: %s", error)

    def _seal_pending(self) -> list[FileRecord]:
        sealed: list[FileRecord] = []
        with self._seal_mutex:
            for segment in self._sealable():
                sealed.extend(self._seal_segment(segment))
        return sealed

    def _seal_segment(self, segment: _TailSegment) -> list[FileRecord]:
        from kubetrail.store import seal as sealing  # Parquet writing loads only in a store that seals

        assert self._wal is not None and self._manifest is not None
        if segment.last_seq:
            with contextlib.suppress(NotDurableError):
                self._wal.wait(segment.last_seq)
        with self._lock:
            items = list(segment.batches)
        path = self.layout.wal_segment(segment.segment_id)
        pending: list[sealing.PendingFile] = []
        if items:
            table = pa.Table.from_batches([item.arrow() for item in items], schema=ROW_SCHEMA)
            try:
                pending = sealing.write_segment(
                    self.layout, segment.segment_id, table, compression_level=self.options.compression_level
                )
            except BaseException:
                sealing.discard(pending)
                raise
        with _flock(self.layout.manifest_lock, fcntl.LOCK_EX):
            if pending:
                try:
                    self._manifest.append("seal", files=[item.record for item in pending], wal=[segment.segment_id])
                except BaseException:
                    sealing.discard(pending)
                    raise
                sealing.publish(pending)
            with self._lock:
                for item in pending:
                    self._visible[item.record.path] = item.final
                self._tail.remove(segment)
            path.unlink(missing_ok=True)
            fsync_dir(path.parent)
        with self._room:
            self._room.notify_all()
        return [item.record for item in pending]

    def seal(self) -> list[FileRecord]:
        """Seal everything acknowledged so far into Parquet now; returns the files written."""
        if self.read_only or self._wal is None:
            raise StoreError("the store is open read-only", path=str(self.layout.root))
        with self._lock:
            if self._tail and self._tail[-1].batches:
                self._rotate_locked()
        return self._seal_pending()

    # ----- retention ------------------------------------------------------------------------------------

    def apply_retention(
        self, *, retention_days: int | None = None, max_bytes: int | None = None, today: date | None = None
    ) -> RetentionPlan:
        """Remove whole partitions past `retention_days` or beyond `max_bytes`, recording it in the manifest;
        dead letters older than `retention_days` go too."""
        if self.read_only or self._manifest is None:
            raise StoreError("the store is open read-only", path=str(self.layout.root))
        today = today or datetime.now(UTC).date()
        if retention_days is not None:
            self.dead_letters.remove_before(today - timedelta(days=retention_days))
        with self._seal_mutex, _flock(self.layout.manifest_lock, fcntl.LOCK_EX):
            plan = plan_retention(
                self._state,
                today=today,
                retention_days=retention_days,
                max_bytes=max_bytes,
            )
            if not plan.removed:
                return plan
            self._manifest.append("retention", removed=plan.removed, reason=plan.reason)
            directories: set[Path] = set()
            for record in plan.removed:
                path = self.layout.absolute(record.path)
                path.unlink(missing_ok=True)
                directories.add(path.parent)
            for directory in sorted(directories, key=lambda item: len(item.parts), reverse=True):
                for candidate in (directory, directory.parent):
                    with contextlib.suppress(OSError):
                        candidate.rmdir()
                with contextlib.suppress(OSError):
                    fsync_dir(directory.parent.parent)
            with self._lock:
                for record in plan.removed:
                    self._visible.pop(record.path, None)
                for day, cluster in plan.partitions:
                    self._index.drop((date.fromisoformat(day), cluster))
        return plan

    # ----- reading --------------------------------------------------------------------------------------

    def _load_keys(self, partition: Partition) -> pa.ChunkedArray:
        """Every stored key of a partition (sealed files and tail), as Arrow (8 bytes a key, no Python ints)."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        day, cluster = partition
        prefix = f"{self.layout.relative(self.layout.partition_dir(day.isoformat(), cluster))}/"
        files = [path for relative, path in self._visible.items() if relative.startswith(prefix)]
        chunks: list[pa.Array] = []
        for path in files:
            try:
                chunks.extend(pq.read_table(path, columns=["dedup_key"]).column(0).chunks)
            except (OSError, pa.ArrowException) as error:
                log.warning("%s: cannot read its dedup keys (%s); run `kubetrail verify`", path, error)
        wanted = pa.scalar(day, pa.date32())
        for segment in self._tail:
            for item in segment.batches:
                if item.rows.cluster == cluster:
                    chunks.append(item.rows.key_values.filter(pc.equal(item.rows.days, wanted)))
        return pa.chunked_array(chunks, pa.int64())

    def sealed_files(self) -> list[Path]:
        """The live sealed Parquet files, as the manifest lists them (skipping any removed behind the store's back;
        `kubetrail verify` reports those)."""
        with self._lock:
            return [path for _, path in sorted(self._visible.items()) if path.exists()]

    def tail_rows(self) -> pa.Table:
        """Every acknowledged, not yet sealed event, in ROW_SCHEMA (the `tail` view adds the flat columns)."""
        with self._lock:
            durable = self._wal.durable_seq if self._wal is not None else None
            items = [
                item for segment in self._tail for item in segment.batches if durable is None or item.seq <= durable
            ]
        return pa.Table.from_batches([item.arrow() for item in items], schema=ROW_SCHEMA)

    def query_connection(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection whose `events` view holds every acknowledged event (sealed and tail), once."""
        with self._lock:
            files = self.sealed_files()
            tail = self.tail_rows()
        connection = connect(files, tail)
        register_alerts_view(connection, self.layout.root)
        return connection

    def stats(self) -> StoreStats:
        with self._lock:
            return StoreStats(
                sealed_files=len(self._visible),
                sealed_rows=sum(self._state.live[relative].rows for relative in self._visible),
                sealed_bytes=sum(self._state.live[relative].bytes for relative in self._visible),
                tail_rows=self._unsealed_locked(),
                wal_segments=len(self.layout.wal_segments()),
                dedup_keys=self._index.loaded_keys,
                dead_letters=self.dead_letters.count,
            )

    @property
    def fsync_seconds(self) -> list[float]:
        """Recent WAL fsync latencies (for the receiver's histogram)."""
        return list(self._wal.fsync_seconds) if self._wal is not None else []

    @property
    def seal_error(self) -> BaseException | None:
        """The last background sealing failure, cleared by the next success (for /readyz)."""
        return self._seal_error

    # ----- closing --------------------------------------------------------------------------------------

    def close(self, *, seal: bool = True) -> None:
        """Seal what is left (unless `seal=False`), stop the background threads and release the store."""
        if self._closed:
            return
        try:
            if not self.read_only and self._wal is not None and seal:
                self.seal()
        finally:
            with self._lock, self._seal_cond:
                self._closed = True
                self._seal_cond.notify_all()
            if self._seal_thread is not None:
                self._seal_thread.join()
            if self._wal is not None:
                self._wal.close()
                active = self.layout.wal_segment(self._wal.segment_id)
                with contextlib.suppress(OSError):
                    if active.stat().st_size <= len(SEGMENT_MAGIC):
                        active.unlink()
            self.dead_letters.close()
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
