"""WAL group commit: appends that arrive during one fsync share the next, each acknowledged only after it."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from kubetrail.store.errors import NotDurableError
from kubetrail.store.layout import Layout
from kubetrail.store.wal import FileOps, WalBatch, WalWriter, encode_record, scan_segment


class GatedOps(FileOps):
    """Real fsyncs, each held at a gate until the test opens it; the records each fsync covered are logged."""

    def __init__(self) -> None:
        self.calls = 0
        self.entered = threading.Semaphore(0)
        self.gate = threading.Semaphore(0)
        self.started: list[int] = []
        """The records written when each fsync started (what it covers)."""
        self.writer: WalWriter | None = None

    def fsync(self, fd: int) -> None:
        assert self.writer is not None
        self.calls += 1
        self.started.append(self.writer.written_seq)
        self.entered.release()
        assert self.gate.acquire(timeout=30)
        super().fsync(fd)


def _record(number: int) -> bytes:
    return encode_record(WalBatch("prod", number, [b'{"n":%d}' % number]))


def _writer(tmp_path: Path, ops: FileOps, interval: float = 0.0) -> tuple[Layout, WalWriter]:
    layout = Layout(tmp_path)
    layout.create()
    return layout, WalWriter(layout, next_segment_id=1, file_ops=ops, commit_interval=interval)


def test_appends_during_one_fsync_share_the_next_and_wait_for_it(tmp_path: Path) -> None:
    ops = GatedOps()
    layout, wal = _writer(tmp_path, ops)
    ops.writer = wal
    first = wal.append(_record(0))
    assert ops.entered.acquire(timeout=30)  # the first fsync is running (held at the gate)
    # `append` is called by one thread at a time (the store holds its lock); it does not wait for the fsync
    for number in range(1, 9):
        wal.append(_record(number))
    assert wal.written_seq == 9 and wal.durable_seq == 0
    ops.gate.release()  # the first fsync ends: it covered the first record only
    wal.wait(first)
    assert wal.durable_seq == 1
    with pytest.raises(NotDurableError, match="timed out"):
        wal.wait(9, timeout=0.05)  # the other eight wait for an fsync that has not finished
    assert ops.entered.acquire(timeout=30)
    ops.gate.release()
    wal.wait(9)
    # 9 records, 2 fsyncs: the eight appended during the first fsync were all covered by the second
    assert (ops.calls, wal.fsyncs, ops.started) == (2, 2, [1, 9])
    ops.gate.release()  # closing syncs the segment once more
    wal.close()
    assert [batch.received_us for batch in scan_segment(layout.wal_segment(1)).batches] == list(range(9))


def test_an_async_waiter_completes_only_after_the_covering_fsync(tmp_path: Path) -> None:
    ops = GatedOps()
    _, wal = _writer(tmp_path, ops)
    ops.writer = wal

    async def scenario() -> list[bool]:
        loop = asyncio.get_running_loop()
        futures = [wal.future(wal.append(_record(n)), loop) for n in range(3)]
        await asyncio.to_thread(ops.entered.acquire, True, 30)
        await asyncio.sleep(0.05)
        seen = [future.done() for future in futures]
        ops.gate.release()
        if wal.written_seq > ops.started[0]:
            await asyncio.to_thread(ops.entered.acquire, True, 30)
            ops.gate.release()
        await asyncio.gather(*futures)
        return seen

    seen = asyncio.run(scenario())
    ops.gate.release()
    wal.close()
    assert seen == [False, False, False]
    assert wal.durable_seq == 3


def test_the_commit_interval_bounds_the_fsyncs_not_the_appends(tmp_path: Path) -> None:
    ops = FileOps()
    layout, wal = _writer(tmp_path, ops, interval=3600.0)
    wal.wait(wal.append(_record(0)), timeout=30)  # after a quiet spell the first append is synced at once
    seqs = [wal.append(_record(n)) for n in range(1, 50)]
    with pytest.raises(NotDurableError, match="timed out"):
        wal.wait(seqs[0], timeout=0.05)  # within the interval: not synced, so not acknowledged
    assert wal.fsyncs == 1
    wal.close()  # closing flushes at once: one fsync for the 49 records that waited
    assert wal.fsyncs == 2
    assert wal.durable_seq == 50
    assert len(scan_segment(layout.wal_segment(1)).batches) == 50
