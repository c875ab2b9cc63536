"""Rotation on real files, by lumberjack's documented rules (the apiserver's --audit-log-max* flags)."""

from __future__ import annotations

import gzip
import os
import re
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from kubetrail.emit.rotation import (
    MEGABYTE,
    RotatingFile,
    RotationError,
    format_backup_time,
    go_ext,
    parse_backup_time,
)

T0 = datetime(2026, 3, 19, 10, 30, 0, 123_456, tzinfo=UTC)
LUMBERJACK_BACKUP = re.compile(r"audit-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}\.log(\.gz)?")


class Clock:
    """A settable clock: returns `now`, which tests move forward."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def records(count: int, size: int = 1024) -> list[bytes]:
    return [(f"{n:08d}".encode() * (size // 8 + 1))[: size - 1] + b"\n" for n in range(count)]


def backups(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.name != "audit.log")


@pytest.mark.parametrize(
    ("name", "ext"), [("audit.log", ".log"), ("audit", ""), ("a.b.json", ".json"), (".hidden", ".hidden")]
)
def test_extension_is_go_filepath_ext(name: str, ext: str) -> None:
    assert go_ext(name) == ext


def test_backup_time_format_truncates_to_milliseconds_and_parses_back() -> None:
    assert format_backup_time(T0) == "2026-03-19T10-30-00.123"
    assert parse_backup_time("2026-03-19T10-30-00.123") == T0.replace(microsecond=123_000)
    for bad in (
        "2026-03-19T10-30-00",
        "2026-13-01T00-00-00.000",
        "2026-03-19T10:30:00.123",
        "2026-03-19T10-30-00.1234",
    ):
        assert parse_backup_time(bad) is None


def test_backup_name_is_name_time_ext_in_utc(tmp_path: Path) -> None:
    rotating = RotatingFile(tmp_path / "audit.log", clock=Clock(T0.astimezone(timezone(timedelta(hours=2)))))
    assert rotating.backup_name(T0.astimezone(timezone(timedelta(hours=2)))) == str(
        tmp_path / "audit-2026-03-19T10-30-00.123.log"
    )
    no_ext = RotatingFile(tmp_path / "audit")
    assert no_ext.backup_name(T0) == str(tmp_path / "audit-2026-03-19T10-30-00.123")


def test_rotates_when_a_write_would_exceed_maxsize(tmp_path: Path) -> None:
    clock = Clock()
    rotating = RotatingFile(tmp_path / "audit.log", max_size_mb=1, clock=clock)
    lines = records(1500)
    # 1024 records of 1 KiB fill exactly 1 MiB: allowed; the 1025th would exceed it
    assert rotating.write_records(lines[:1024]) == 0
    assert rotating.rotations == 0
    clock.advance(seconds=1)
    assert rotating.write_records(lines[1024:]) == 0
    rotating.close()
    backup = tmp_path / "audit-2026-03-19T10-30-01.123.log"
    assert backup.read_bytes() == b"".join(lines[:1024])
    assert backup.stat().st_size == MEGABYTE
    assert (tmp_path / "audit.log").read_bytes() == b"".join(lines[1024:])
    assert backups(tmp_path) == [backup.name]


def test_default_maxsize_is_100_megabytes(tmp_path: Path) -> None:
    assert RotatingFile(tmp_path / "audit.log").max_bytes == 100 * MEGABYTE
    assert RotatingFile(tmp_path / "audit.log", max_size_mb=7).max_bytes == 7 * MEGABYTE


def test_each_record_lands_whole_in_one_file(tmp_path: Path) -> None:
    clock = Clock()
    rotating = RotatingFile(tmp_path / "audit.log", max_size_mb=1, clock=clock)
    lines = records(3000, size=1000)
    for start in range(0, 3000, 7):
        clock.advance(milliseconds=1)
        rotating.write_records(lines[start : start + 7])
    rotating.close()
    files = sorted(tmp_path.iterdir(), key=lambda path: (path.name == "audit.log", path.name))
    assert len(files) == 3
    for path in files:
        data = path.read_bytes()
        assert len(data) <= MEGABYTE and data.endswith(b"\n")
    assert [len(path.read_bytes()) // 1000 for path in files] == [1048, 1048, 904]
    assert b"".join(path.read_bytes() for path in files) == b"".join(lines)


def test_existing_file_is_appended_unless_the_first_write_would_reach_maxsize(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(b"x" * (MEGABYTE - 100))
    appending = RotatingFile(path, max_size_mb=1, clock=Clock())
    appending.write(b"y" * 99)
    appending.close()
    assert path.stat().st_size == MEGABYTE - 1 and backups(tmp_path) == []

    path.write_bytes(b"x" * (MEGABYTE - 100))
    rotating = RotatingFile(path, max_size_mb=1, clock=Clock())
    rotating.write(b"y" * 100)  # size + write == maxsize: lumberjack rotates on open
    rotating.close()
    assert path.read_bytes() == b"y" * 100
    assert backups(tmp_path) == ["audit-2026-03-19T10-30-00.123.log"]


def test_a_record_larger_than_maxsize_is_refused(tmp_path: Path) -> None:
    rotating = RotatingFile(tmp_path / "audit.log", max_size_mb=1, clock=Clock())
    with pytest.raises(RotationError, match=f"write length {MEGABYTE + 1} exceeds maximum file size {MEGABYTE}"):
        rotating.write(b"z" * (MEGABYTE + 1))
    assert rotating.write_records([b"a\n", b"z" * (MEGABYTE + 1), b"b\n"]) == 1
    rotating.close()
    assert (tmp_path / "audit.log").read_bytes() == b"a\nb\n"


def test_files_are_created_0600_and_rotation_keeps_the_mode(tmp_path: Path) -> None:
    clock = Clock()
    fresh = RotatingFile(tmp_path / "logs" / "audit.log", max_size_mb=1, clock=clock)
    fresh.write(b"first\n")
    fresh.close()
    assert mode(tmp_path / "logs" / "audit.log") == 0o600
    os.chmod(tmp_path / "logs" / "audit.log", 0o640)
    again = RotatingFile(tmp_path / "logs" / "audit.log", max_size_mb=1, clock=clock)
    again.write(b"second\n")
    again.rotate()
    again.write(b"third\n")
    again.close()
    assert mode(tmp_path / "logs" / "audit.log") == 0o640
    assert mode(tmp_path / "logs" / "audit-2026-03-19T10-30-00.123.log") == 0o640


def fill_backups(rotating: RotatingFile, clock: Clock, count: int, step: Callable[[], None]) -> None:
    for n in range(count):
        rotating.write(f"generation {n}\n".encode())
        step()
        rotating.rotate()
    rotating.write(b"current\n")
    rotating.wait_for_mill()


def test_maxbackup_keeps_the_newest_backups(tmp_path: Path) -> None:
    clock = Clock()
    rotating = RotatingFile(tmp_path / "audit.log", max_backups=2, clock=clock)
    fill_backups(rotating, clock, 5, lambda: clock.advance(minutes=1))
    rotating.close()
    kept = backups(tmp_path)
    assert kept == ["audit-2026-03-19T10-34-00.123.log", "audit-2026-03-19T10-35-00.123.log"]
    assert (tmp_path / kept[-1]).read_bytes() == b"generation 4\n"
    assert (tmp_path / "audit.log").read_bytes() == b"current\n"


def test_maxage_removes_backups_older_than_the_cutoff_by_their_name(tmp_path: Path) -> None:
    clock = Clock()
    for days in (10, 3, 1):
        (tmp_path / f"audit-{format_backup_time(T0 - timedelta(days=days))}.log").write_bytes(b"old\n")
    (tmp_path / "audit-not-a-time.log").write_bytes(b"keep\n")
    (tmp_path / "other-2020-01-01T00-00-00.000.log").write_bytes(b"keep\n")
    rotating = RotatingFile(tmp_path / "audit.log", max_age_days=2, clock=clock)
    rotating.write(b"now\n")
    rotating.wait_for_mill()
    rotating.close()
    assert backups(tmp_path) == [
        "audit-2026-03-18T10-30-00.123.log",
        "audit-not-a-time.log",
        "other-2020-01-01T00-00-00.000.log",
    ]


def test_compress_gzips_backups_with_the_same_content_and_mode(tmp_path: Path) -> None:
    clock = Clock()
    rotating = RotatingFile(tmp_path / "audit.log", compress=True, clock=clock)
    lines = records(50)
    rotating.write_records(lines)
    clock.advance(hours=1)
    rotating.rotate()
    rotating.write(b"after\n")
    rotating.close()
    names = backups(tmp_path)
    assert names == ["audit-2026-03-19T11-30-00.123.log.gz"]
    assert all(LUMBERJACK_BACKUP.fullmatch(name) for name in names)
    compressed = tmp_path / names[0]
    assert gzip.decompress(compressed.read_bytes()) == b"".join(lines)
    assert mode(compressed) == 0o600


def test_a_backup_and_its_gz_count_once_against_maxbackup(tmp_path: Path) -> None:
    newest = format_backup_time(T0 - timedelta(hours=1))
    oldest = format_backup_time(T0 - timedelta(hours=2))
    (tmp_path / f"audit-{newest}.log").write_bytes(b"n\n")
    (tmp_path / f"audit-{newest}.log.gz").write_bytes(gzip.compress(b"n\n"))
    (tmp_path / f"audit-{oldest}.log").write_bytes(b"o\n")
    rotating = RotatingFile(tmp_path / "audit.log", max_backups=1, clock=Clock())
    rotating.write(b"now\n")
    rotating.close()
    assert backups(tmp_path) == [f"audit-{newest}.log", f"audit-{newest}.log.gz"]


def test_nothing_is_removed_without_limits(tmp_path: Path) -> None:
    clock = Clock()
    rotating = RotatingFile(tmp_path / "audit.log", clock=clock)
    fill_backups(rotating, clock, 4, lambda: clock.advance(days=400))
    rotating.close()
    assert len(backups(tmp_path)) == 4


def test_two_rotations_in_one_millisecond_keep_both_backups(tmp_path: Path) -> None:
    rotating = RotatingFile(tmp_path / "audit.log", clock=Clock())
    for n in range(3):
        rotating.write(f"{n}\n".encode())
        rotating.rotate()
    rotating.close()
    names = backups(tmp_path)
    assert names == [
        "audit-2026-03-19T10-30-00.123.log",
        "audit-2026-03-19T10-30-00.124.log",
        "audit-2026-03-19T10-30-00.125.log",
    ]
    assert [(tmp_path / name).read_bytes() for name in names] == [b"0\n", b"1\n", b"2\n"]
