"""The WAL on real files: torn tails, crash truncation at every offset, injected ENOSPC and fsync failures."""

from __future__ import annotations

import errno
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kubetrail.store.errors import NotDurableError
from kubetrail.store.layout import Layout
from kubetrail.store.wal import SEGMENT_MAGIC, FileOps, WalBatch, WalWriter, encode_record, scan_segment


def _batch(number: int) -> WalBatch:
    return WalBatch("prod", number, [f'{{"n":{number}}}'.encode(), b'{"second":true}'])


def _writer(tmp_path: Path, ops: FileOps | None = None) -> tuple[Layout, WalWriter]:
    layout = Layout(tmp_path)
    layout.create()
    return layout, WalWriter(layout, next_segment_id=1, file_ops=ops)


def test_records_round_trip_after_fsync(tmp_path: Path) -> None:
    layout, wal = _writer(tmp_path)
    for number in range(5):
        wal.wait(wal.append(encode_record(_batch(number))))
    wal.close()
    scan = scan_segment(layout.wal_segment(1))
    assert scan.problem == ""
    assert [batch.received_us for batch in scan.batches] == [0, 1, 2, 3, 4]
    assert scan.batches[3].lines == [b'{"n":3}', b'{"second":true}']


def test_every_truncation_point_keeps_exactly_the_complete_records(tmp_path: Path) -> None:
    layout, wal = _writer(tmp_path)
    ends = []
    for number in range(4):
        wal.wait(wal.append(encode_record(_batch(number))))
        ends.append(wal.segment_bytes)
    wal.close()
    original = layout.wal_segment(1).read_bytes()
    for cut in range(len(SEGMENT_MAGIC), len(original) + 1):
        copy = tmp_path / f"cut-{cut}.wal"
        copy.write_bytes(original[:cut])
        scan = scan_segment(copy, repair=True)
        complete = sum(1 for end in ends if end <= cut)
        assert [batch.received_us for batch in scan.batches] == list(range(complete))
        assert copy.stat().st_size == (ends[complete - 1] if complete else len(SEGMENT_MAGIC))
        assert scan_segment(copy).problem == ""


def test_a_flipped_byte_costs_only_the_damaged_record(tmp_path: Path) -> None:
    layout, wal = _writer(tmp_path)
    offsets = []
    for number in range(3):
        offsets.append(wal.segment_bytes)
        wal.wait(wal.append(encode_record(_batch(number))))
    offsets.append(wal.segment_bytes)
    wal.close()
    data = bytearray(layout.wal_segment(1).read_bytes())
    data[offsets[1] + 12] ^= 0x01
    layout.wal_segment(1).write_bytes(bytes(data))
    scan = scan_segment(layout.wal_segment(1))
    assert "checksum" in scan.problem
    assert [batch.received_us for batch in scan.batches] == [0, 2]
    assert not scan.torn
    assert [(item.offset, item.size, item.records, item.exact) for item in scan.damage] == [
        (offsets[1], offsets[2] - offsets[1], 1, True)
    ]
    assert (scan.skipped_bytes, scan.skipped_records) == (offsets[2] - offsets[1], 1)


class FullDisk(FileOps):
    """Writes fail with ENOSPC after `allowed` bytes have been written, like a filesystem that fills up."""

    def __init__(self) -> None:
        self.allowed: int | None = None
        self.written = 0
        self.fail_fsync = False

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if self.allowed is not None:
            room = self.allowed - self.written
            if room <= 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            data = data[:room]
        count = super().write(fd, data)
        self.written += count
        return count

    def fsync(self, fd: int) -> None:
        if self.fail_fsync:
            raise OSError(errno.EIO, "Input/output error")
        super().fsync(fd)


def test_enospc_mid_record_raises_and_leaves_no_partial_record(tmp_path: Path) -> None:
    ops = FullDisk()
    layout, wal = _writer(tmp_path, ops)
    wal.wait(wal.append(encode_record(_batch(0))))
    ops.allowed = ops.written + 10  # the next record is cut after 10 bytes
    with pytest.raises(NotDurableError, match="No space left"):
        wal.append(encode_record(_batch(1)))
    ops.allowed = None  # space returns
    wal.wait(wal.append(encode_record(_batch(2))))
    wal.close()
    scan = scan_segment(layout.wal_segment(1))
    assert scan.problem == ""
    assert [batch.received_us for batch in scan.batches] == [0, 2]


def test_fsync_failure_fails_the_waiters_and_moves_to_a_new_segment(tmp_path: Path) -> None:
    ops = FullDisk()
    failed: list[tuple[int, int]] = []
    layout = Layout(tmp_path)
    layout.create()
    wal = WalWriter(layout, next_segment_id=1, file_ops=ops, on_failure=lambda low, high: failed.append((low, high)))
    wal.wait(wal.append(encode_record(_batch(0))))
    ops.fail_fsync = True
    seq = wal.append(encode_record(_batch(1)))
    with pytest.raises(NotDurableError, match="fsync failed"):
        wal.wait(seq)
    assert failed == [(seq, seq)]
    ops.fail_fsync = False
    later = wal.append(encode_record(_batch(2)))
    wal.wait(later)
    assert wal.segment_id == 2
    wal.close()
    assert [batch.received_us for batch in scan_segment(layout.wal_segment(2)).batches] == [2]


def test_group_commit_covers_concurrent_writers_with_fewer_fsyncs(tmp_path: Path) -> None:
    class Counting(FileOps):
        def __init__(self) -> None:
            self.fsyncs = 0

        def fsync(self, fd: int) -> None:
            self.fsyncs += 1
            time.sleep(0.002)  # a disk whose flush takes a while, so that writers pile up behind it
            super().fsync(fd)

    ops = Counting()
    layout, wal = _writer(tmp_path, ops)
    lock = threading.Lock()
    per_thread = 50

    def writer(thread: int) -> None:
        for number in range(per_thread):
            with lock:
                seq = wal.append(encode_record(_batch(thread * 1000 + number)))
            wal.wait(seq)

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wal.close()
    batches = scan_segment(layout.wal_segment(1)).batches
    assert len(batches) == 8 * per_thread
    assert wal.durable_seq == 8 * per_thread
    assert ops.fsyncs < 8 * per_thread


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=400), flips=st.lists(st.integers(min_value=0, max_value=399), max_size=3))
def test_damaged_segments_never_yield_a_partial_or_altered_record(tmp_path: Path, cut: int, flips: list[int]) -> None:
    layout = Layout(Path(tempfile.mkdtemp(dir=tmp_path)))
    layout.create()
    wal = WalWriter(layout, next_segment_id=1)
    for number in range(6):
        wal.wait(wal.append(encode_record(_batch(number))))
    wal.close()
    path = layout.wal_segment(1)
    data = bytearray(path.read_bytes())
    originals = [_batch(number) for number in range(6)]
    damaged = bytearray(data[: len(data) - cut])
    for position in flips:
        if position < len(damaged):
            damaged[position] ^= 0x5A
    path.write_bytes(bytes(damaged))
    scan = scan_segment(path, repair=True)
    # what is recovered is the originals in order, less the damaged ones: never an altered or invented record
    remaining = iter(originals)
    assert all(any(batch == original for original in remaining) for batch in scan.batches)
    if all(item.exact for item in scan.damage):  # no record is counted twice
        assert len(scan.batches) + scan.skipped_records + scan.torn <= len(originals)
    repaired = scan_segment(path)
    assert repaired.problem == ""
    assert repaired.batches == scan.batches
    assert (path.parent / f"{path.name}.damaged").exists() == scan.damaged


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    damaged=st.integers(min_value=0, max_value=5),
    flips=st.lists(st.tuples(st.floats(min_value=0, max_value=1, exclude_max=True), st.integers(1, 255)), min_size=1),
)
def test_damage_inside_one_record_costs_only_that_record(
    tmp_path: Path, damaged: int, flips: list[tuple[float, int]]
) -> None:
    layout = Layout(Path(tempfile.mkdtemp(dir=tmp_path)))
    layout.create()
    wal = WalWriter(layout, next_segment_id=1)
    offsets = []
    for number in range(6):
        offsets.append(wal.segment_bytes)
        wal.wait(wal.append(encode_record(_batch(number))))
    offsets.append(wal.segment_bytes)
    wal.close()
    path = layout.wal_segment(1)
    original = path.read_bytes()
    data = bytearray(original)
    start, end = offsets[damaged], offsets[damaged + 1]
    for where, mask in flips:  # anywhere in the record: its length, its CRC or its payload
        data[start + int(where * (end - start))] ^= mask
    assume(data[start:end] != original[start:end])  # two flips of the same bits cancel out
    path.write_bytes(bytes(data))
    scan = scan_segment(path)
    assert [batch.received_us for batch in scan.batches] == [number for number in range(6) if number != damaged]
    if damaged < 5:  # in the last record, damage to both its length and its payload looks like a torn write
        assert [(item.offset, item.size) for item in scan.damage] == [(start, end - start)]


def test_a_damaged_segment_header_hides_no_record(tmp_path: Path) -> None:
    layout, wal = _writer(tmp_path)
    for number in range(3):
        wal.wait(wal.append(encode_record(_batch(number))))
    wal.close()
    path = layout.wal_segment(1)
    data = bytearray(path.read_bytes())
    data[2] ^= 0x20
    path.write_bytes(bytes(data))
    scan = scan_segment(path, repair=True)
    assert [batch.received_us for batch in scan.batches] == [0, 1, 2]
    assert [(item.offset, item.size, item.records) for item in scan.damage] == [(0, len(SEGMENT_MAGIC), 0)]
    assert "bad segment header" in scan.problem
    assert scan.kept is not None and scan.kept.read_bytes() == bytes(data)
    assert path.read_bytes().startswith(SEGMENT_MAGIC)
    assert [batch.received_us for batch in scan_segment(path).batches] == [0, 1, 2]


def test_repair_keeps_a_private_copy_and_never_overwrites_an_earlier_one(tmp_path: Path) -> None:
    layout, wal = _writer(tmp_path)
    offsets = []
    for number in range(3):
        offsets.append(wal.segment_bytes)
        wal.wait(wal.append(encode_record(_batch(number))))
    wal.close()
    path = layout.wal_segment(1)
    pristine = path.read_bytes()
    copies = []
    for record in (1, 2):
        data = bytearray(pristine)
        data[offsets[record] + 10] ^= 0xFF
        path.write_bytes(bytes(data))
        scan = scan_segment(path, repair=True)
        assert scan.kept is not None
        assert scan.kept.read_bytes() == bytes(data)
        assert scan.kept.stat().st_mode & 0o777 == 0o600
        copies.append(scan.kept.name)
        path.write_bytes(pristine)
    assert copies == ["0000000001.wal.damaged", "0000000001.wal.2.damaged"]
    assert not list(path.parent.glob("*.repair"))
