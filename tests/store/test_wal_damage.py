"""A damaged WAL record costs only itself: the store recovers every intact record after it, says so loudly,
and `kubetrail verify` fails until the operator has dealt with the damaged copy. A torn tail stays silent.

Real stores on real files: append, stop without sealing (what `kill -9` leaves), damage the segment, reopen.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli
from kubetrail.store import Store, StoreOptions, verify_store
from kubetrail.store.wal import RECORD_HEADER, SEGMENT_MAGIC
from tests.store.factory import make_events

BATCHES = [make_events(0, 5), make_events(5, 5), make_events(10, 5), make_events(15, 5)]


def _crashed_store(root: Path, batches: int = 3) -> Path:
    """A store holding `batches` acknowledged batches, one WAL record each, left unsealed; its segment."""
    store = Store.open(root, StoreOptions(background_seal=False))
    for batch in BATCHES[:batches]:
        store.append("prod", batch)
    store.close(seal=False)
    (segment,) = (root / "wal").glob("*.wal")
    return segment


def _records(segment: Path) -> list[tuple[int, int]]:
    """The byte range of each record in an undamaged segment."""
    data = segment.read_bytes()
    offset, spans = len(SEGMENT_MAGIC), []
    while offset < len(data):
        (length, _) = RECORD_HEADER.unpack_from(data, offset)
        spans.append((offset, offset + RECORD_HEADER.size + length))
        offset = spans[-1][1]
    return spans


def _flip_payload(segment: Path, record: tuple[int, int]) -> bytes:
    """Flip four bytes in the middle of a record's payload (not a torn tail: the record is complete)."""
    start, end = record
    data = bytearray(segment.read_bytes())
    middle = (start + RECORD_HEADER.size + end) // 2
    data[middle : middle + 4] = bytes(byte ^ 0xFF for byte in data[middle : middle + 4])
    segment.write_bytes(bytes(data))
    return bytes(data)


def _ids(store: Store) -> set[str]:
    return {row[0] for row in store.query_connection().sql("SELECT audit_id FROM events").fetchall()}


def _expected(*batches: int) -> set[str]:
    return {event.auditID for number in batches for event in BATCHES[number] if event.auditID}


def _damage_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if "WAL damage" in record.getMessage()]


def _reopen(root: Path) -> set[str]:
    """Open the store for writing (recovery runs), return what it holds, close it (sealing); check the seal."""
    with Store.open(root, StoreOptions(background_seal=False)) as store:
        ids = _ids(store)
    with Store.open(root, read_only=True) as reader:
        assert _ids(reader) == ids
    return ids


def test_a_damaged_middle_record_loses_only_its_own_batch(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "s"
    segment = _crashed_store(root)
    records = _records(segment)
    assert len(records) == 3
    damaged = _flip_payload(segment, records[1])
    start, end = records[1]

    with caplog.at_level(logging.WARNING):
        assert _reopen(root) == _expected(0, 2)

    (logged,) = _damage_logs(caplog)
    assert logged.levelno == logging.ERROR
    message = logged.getMessage()
    assert f"skipped {end - start} damaged bytes (1 record) at bytes {start}-{end - 1}" in message
    assert f"bytes {start}-{end - 1}" in message and "checksum mismatch" in message
    assert "recovered 2 intact record(s)" in message
    kept = segment.with_name(f"{segment.name}.damaged")
    assert f"kept as {kept.name}" in message
    assert kept.read_bytes() == damaged
    assert kept.stat().st_mode & 0o777 == 0o600


def _length(change: Callable[[int, int], int]) -> Callable[[bytearray, int, int], None]:
    def damage(data: bytearray, start: int, end: int) -> None:
        length, _crc = RECORD_HEADER.unpack_from(data, start)
        struct.pack_into("<I", data, start, change(length, len(data) - start))

    return damage


def _crc(data: bytearray, start: int, end: int) -> None:
    data[start + 5] ^= 0x10


HEADER_DAMAGE = {
    "length far too large": _length(lambda length, left: 0xFFFF_FFFF),
    "length past the end of the segment": _length(lambda length, left: left + 100),
    "length into the next record": _length(lambda length, left: length + 20),
    "length a little short": _length(lambda length, left: length - 3),
    "length zero": _length(lambda length, left: 0),
    "checksum field": _crc,
}


@pytest.mark.parametrize("damage", HEADER_DAMAGE.values(), ids=HEADER_DAMAGE.keys())
def test_a_damaged_record_header_loses_only_its_own_batch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: Callable[[bytearray, int, int], None]
) -> None:
    root = tmp_path / "s"
    segment = _crashed_store(root)
    start, end = _records(segment)[1]
    data = bytearray(segment.read_bytes())
    damage(data, start, end)
    segment.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING):
        assert _reopen(root) == _expected(0, 2)

    (logged,) = _damage_logs(caplog)
    assert logged.levelno == logging.ERROR
    assert f"skipped {end - start} damaged bytes" in logged.getMessage()
    assert f"bytes {start}-{end - 1}" in logged.getMessage()
    assert segment.with_name(f"{segment.name}.damaged").read_bytes() == bytes(data)


def test_verify_fails_until_the_damaged_copy_is_dealt_with(tmp_path: Path) -> None:
    root = tmp_path / "s"
    segment = _crashed_store(root)
    start, end = _records(segment)[1]
    _flip_payload(segment, (start, end))
    runner = CliRunner()

    # 1. damaged, not repaired yet: the segment and the offset are named, with what to do
    unrepaired = runner.invoke(cli, ["verify", "--store", str(root)])
    assert unrepaired.exit_code == 1, unrepaired.output
    assert "FAILED: 1 problem(s)" in unrepaired.output
    assert "wal      wal/0000000001.wal: damaged, not repaired yet: skipped" in unrepaired.output
    assert f"bytes {start}-{end - 1}" in unrepaired.output
    assert "hint: the next writer to open the store" in unrepaired.output

    # 2. the store opened and recovered what was intact; the damaged copy still needs the operator
    assert _reopen(root) == _expected(0, 2)
    assert not list((root / "wal").glob("*.wal"))  # the recovered records were sealed
    repaired = runner.invoke(cli, ["verify", "--store", str(root), "-o", "json"])
    assert repaired.exit_code == 1, repaired.output
    report = json.loads(repaired.output)
    assert report["ok"] is False
    (finding,) = report["findings"]
    assert (finding["kind"], finding["path"]) == ("wal", "wal/0000000001.wal.damaged")
    assert f"bytes {start}-{end - 1}" in finding["message"]
    assert "(1 record)" in finding["message"]
    assert "delete it or move it out of wal/" in finding["hint"]
    text = runner.invoke(cli, ["verify", "--store", str(root)])
    assert text.exit_code == 1 and "hint: its intact records were recovered" in text.output

    # 3. resolved: the operator checked the copy and moved it away
    (root / "wal" / "0000000001.wal.damaged").rename(tmp_path / "evidence.wal")
    resolved = runner.invoke(cli, ["verify", "--store", str(root)])
    assert resolved.exit_code == 0, resolved.output
    assert resolved.output.startswith("OK: 1 sealed segments, 10 events")


def test_a_torn_tail_is_cut_silently_and_verify_passes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "s"
    segment = _crashed_store(root)
    records = _records(segment)
    with segment.open("r+b") as handle:  # a crash in the middle of writing the last record
        handle.truncate(records[2][1] - 7)

    before = verify_store(root)
    assert before.ok, before.findings
    assert any("torn record" in note for note in before.notes)

    with caplog.at_level(logging.WARNING):
        store = Store.open(root, StoreOptions(background_seal=False))
    try:
        assert _ids(store) == _expected(0, 1)
        assert segment.stat().st_size == records[1][1]  # truncated after the last complete record
    finally:
        store.close()
    assert not _damage_logs(caplog)
    assert not any(record.levelno >= logging.ERROR for record in caplog.records)
    assert not list((root / "wal").glob("*.damaged"))
    after = CliRunner().invoke(cli, ["verify", "--store", str(root)])
    assert after.exit_code == 0, after.output


def test_damage_and_a_torn_tail_in_one_segment(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "s"
    segment = _crashed_store(root, batches=4)
    records = _records(segment)
    _flip_payload(segment, records[1])
    with segment.open("r+b") as handle:
        handle.truncate(records[3][1] - 30)

    with caplog.at_level(logging.WARNING):
        assert _reopen(root) == _expected(0, 2)

    (logged,) = _damage_logs(caplog)
    # the torn last record is not counted as damage: only the middle record is
    assert f"skipped {records[1][1] - records[1][0]} damaged bytes (1 record)" in logged.getMessage()


def test_a_damaged_length_in_the_last_record_is_not_taken_for_a_torn_tail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "s"
    segment = _crashed_store(root)
    start, end = _records(segment)[2]
    data = bytearray(segment.read_bytes())
    HEADER_DAMAGE["length into the next record"](data, start, end)  # the record looks longer than the file
    segment.write_bytes(bytes(data))

    assert [finding.kind for finding in verify_store(root).findings] == ["wal"]
    with caplog.at_level(logging.WARNING):
        assert _reopen(root) == _expected(0, 1)
    assert [record.levelno for record in _damage_logs(caplog)] == [logging.ERROR]
    assert [finding.path for finding in verify_store(root).findings] == ["wal/0000000001.wal.damaged"]


def test_a_read_only_opener_sees_the_records_after_the_damage_and_repairs_nothing(tmp_path: Path) -> None:
    root = tmp_path / "s"
    segment = _crashed_store(root)
    damaged = _flip_payload(segment, _records(segment)[1])
    with Store.open(root, read_only=True) as reader:
        assert _ids(reader) == _expected(0, 2)
    assert segment.read_bytes() == damaged
    assert not list((root / "wal").glob("*.damaged"))
