"""The --audit-log-* options: kube-apiserver's defaults, its validation messages, and the backend they build."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kubetrail.emit.buffered import BatchConfig
from kubetrail.emit.options import AuditLogOptions, OptionsError, parse_flags, parse_go_duration
from kubetrail.emit.rotation import MEGABYTE, format_backup_time
from kubetrail.intake import read_events
from tests.conftest import PROJECT_ROOT
from tests.emit.backends import sample_events


def test_defaults_are_the_apiservers() -> None:
    options = AuditLogOptions()
    assert not options.enabled and options.build() is None
    # CHANGELOG-1.36 (kubernetes/kubernetes#136478): maxage 366 days, maxbackup 100, maxsize still 100 MB
    assert (options.path, options.max_age, options.max_backups, options.max_size) == ("", 366, 100, 100)
    assert (options.format, options.compress, options.mode, options.version) == (
        "json",
        False,
        "blocking",
        "audit.k8s.io/v1",
    )
    assert options.batch == BatchConfig.for_log()
    assert (options.truncate_enabled, options.truncate_max_event_size, options.truncate_max_batch_size) == (
        False,
        102400,
        10485760,
    )


def test_flags_are_read_in_every_form_and_written_back() -> None:
    args = [
        "--audit-log-path=/var/log/kubernetes/audit/audit.log",
        "--audit-log-maxsize",
        "100",
        "--audit-log-maxbackup=10",
        "--audit-log-maxage=30",
        "--audit-log-compress",
        "--audit-log-mode=batch",
        "--audit-log-batch-max-wait=1m30s",
        "--audit-log-batch-throttle-enable=false",
        "--audit-log-format=legacy",
    ]
    options = parse_flags(args)
    assert options.path == "/var/log/kubernetes/audit/audit.log"
    assert (options.max_size, options.max_backups, options.max_age, options.compress) == (100, 10, 30, True)
    assert (options.mode, options.format) == ("batch", "legacy")
    assert options.batch.max_batch_wait == 90.0 and not options.batch.throttle_enable
    assert options.batch.buffer_size == 10000
    assert parse_flags(options.to_flags()) == options


def test_an_explicit_zero_is_told_from_a_flag_left_out() -> None:
    assert AuditLogOptions().to_flags() == []
    zeros = ["--audit-log-maxage=0", "--audit-log-maxbackup=0", "--audit-log-maxsize=0"]
    options = parse_flags(zeros)
    assert (options.max_age, options.max_backups, options.max_size) == (0, 0, 0)
    assert sorted(options.to_flags()) == zeros
    assert parse_flags(["--audit-log-path=a.log", *zeros]).validate() == []


NOW = datetime(2026, 3, 19, 10, 30, tzinfo=UTC)


def _existing_log(directory: Path, size: int) -> Path:
    """An audit.log of `size` bytes already on disk (sparse: nothing is written)."""
    path = directory / "audit.log"
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


def _backup_names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.name != "audit.log")


def _write_one(options: AuditLogOptions) -> None:
    writer = options.writer(lambda: NOW)
    assert writer.write_records([b"{}\n"]) == 0
    writer.close()


def test_maxsize_left_out_rotates_at_100_mb(tmp_path: Path) -> None:
    path = _existing_log(tmp_path, 100 * MEGABYTE)
    _write_one(AuditLogOptions(path=str(path)))
    assert len(_backup_names(tmp_path)) == 1 and path.stat().st_size == 3


def test_maxsize_zero_turns_rotation_off(tmp_path: Path) -> None:
    # 1.36+: `--audit-log-maxsize=0` disables rotation (before, lumberjack read 0 as 100 MB and rotated here)
    path = _existing_log(tmp_path, 200 * MEGABYTE)
    _write_one(parse_flags([f"--audit-log-path={path}", "--audit-log-maxsize=0"]))
    assert _backup_names(tmp_path) == [] and path.stat().st_size == 200 * MEGABYTE + 3


def _backups_aged(directory: Path, ages: list[timedelta]) -> None:
    for age in ages:
        (directory / f"audit-{format_backup_time(NOW - age)}.log").write_bytes(b"{}\n")


def test_maxage_left_out_removes_backups_older_than_366_days(tmp_path: Path) -> None:
    _backups_aged(tmp_path, [timedelta(days=365), timedelta(days=367)])
    _write_one(AuditLogOptions(path=str(tmp_path / "audit.log")))
    assert _backup_names(tmp_path) == [f"audit-{format_backup_time(NOW - timedelta(days=365))}.log"]


def test_maxbackup_left_out_keeps_the_100_newest_backups(tmp_path: Path) -> None:
    ages = [timedelta(minutes=minutes) for minutes in range(1, 102)]
    _backups_aged(tmp_path, ages)
    _write_one(AuditLogOptions(path=str(tmp_path / "audit.log")))
    kept = _backup_names(tmp_path)
    assert len(kept) == 100 and f"audit-{format_backup_time(NOW - ages[-1])}.log" not in kept


def test_maxage_and_maxbackup_zero_keep_every_backup(tmp_path: Path) -> None:
    ages = [timedelta(minutes=minutes) for minutes in range(1, 102)] + [timedelta(days=400)]
    _backups_aged(tmp_path, ages)
    path = tmp_path / "audit.log"
    _write_one(parse_flags([f"--audit-log-path={path}", "--audit-log-maxage=0", "--audit-log-maxbackup=0"]))
    assert len(_backup_names(tmp_path)) == 102


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--audit-log-maxsize=big"], 'invalid argument "big" for "--audit-log-maxsize" flag'),
        (["--audit-log-compress=maybe"], 'invalid argument "maybe" for "--audit-log-compress" flag'),
        (["--audit-log-rotate=daily"], "unknown flag: --audit-log-rotate"),
        (["--audit-log-path"], "flag needs an argument: --audit-log-path"),
        (["audit.log"], "unexpected argument 'audit.log'"),
    ],
)
def test_bad_flags_are_refused(args: list[str], message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        parse_flags(args)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--audit-log-maxage=-1"], "--audit-log-maxage -1 can't be a negative number"),
        (["--audit-log-maxbackup=-2"], "--audit-log-maxbackup -2 can't be a negative number"),
        (["--audit-log-maxsize=-3"], "--audit-log-maxsize -3 can't be a negative number"),
        (["--audit-log-format=xml"], 'invalid audit log format xml, allowed formats are "json,legacy"'),
        (
            ["--audit-log-mode=async"],
            'invalid audit log mode async, allowed modes are "batch,blocking,blocking-strict"',
        ),
        (
            ["--audit-log-version=audit.k8s.io/v1beta1"],
            'invalid group version, allowed versions are ["audit.k8s.io/v1"]',
        ),
        (
            ["--audit-log-mode=batch", "--audit-log-batch-buffer-size=0"],
            "invalid audit batch log buffer size 0, must be a positive number",
        ),
        (
            ["--audit-log-truncate-max-event-size=0"],
            "invalid audit truncate log max event size 0, must be a positive number",
        ),
        (
            ["--audit-log-truncate-max-batch-size=10"],
            "invalid audit truncate log max batch size 10, must be greater than max event size (102400)",
        ),
    ],
)
def test_validation_messages(args: list[str], error: str) -> None:
    options = parse_flags(["--audit-log-path=/tmp/x/audit.log", *args])
    assert options.validate() == [error]
    with pytest.raises(OptionsError):
        options.build()


def test_batch_options_are_not_checked_outside_batch_mode() -> None:
    assert parse_flags(["--audit-log-path=a.log", "--audit-log-batch-buffer-size=0"]).validate() == []
    assert parse_flags(["--audit-log-maxage=-1"]).validate() == []  # backend off: nothing to check


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("0", 0.0), ("1.5h", 5400.0)]
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "1x", "s"])
def test_invalid_go_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_duration(text)


def test_blocking_mode_creates_the_file_0600_and_ignores_write_errors(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "audit.log"
    backend = parse_flags([f"--audit-log-path={path}", "--audit-log-maxsize=1"]).build()
    assert backend is not None and backend.name() == "ignoreErrors<log>"
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    huge = sample_events(1)[0]
    huge.annotations = {"note": "x" * (2 * 1024 * 1024)}
    assert backend.process_events([huge])
    events = sample_events(3)
    assert backend.process_events(events)
    backend.shutdown()
    assert list(read_events(path)) == events


def test_blocking_strict_reports_write_errors(tmp_path: Path) -> None:
    backend = parse_flags(
        [f"--audit-log-path={tmp_path / 'audit.log'}", "--audit-log-maxsize=1", "--audit-log-mode=blocking-strict"]
    ).build()
    assert backend is not None and backend.name() == "log"
    huge = sample_events(1)[0]
    huge.annotations = {"note": "x" * (2 * 1024 * 1024)}
    assert not backend.process_events([huge])
    backend.shutdown()


def test_batch_mode_and_truncation_wrap_in_the_apiservers_order(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    backend = parse_flags(
        [f"--audit-log-path={path}", "--audit-log-mode=batch", "--audit-log-truncate-enabled"]
    ).build()
    assert backend is not None and backend.name() == "truncate<buffered<log>>"
    backend.run()
    events = sample_events(40)
    assert backend.process_events(events)
    backend.shutdown()
    assert list(read_events(path)) == events


def test_dash_writes_json_lines_to_stdout() -> None:
    script = (
        "from kubetrail.emit.options import parse_flags\n"
        "from tests.emit.backends import sample_events\n"
        "backend = parse_flags(['--audit-log-path=-']).build()\n"
        "backend.run(); backend.process_events(sample_events(3)); backend.shutdown()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True, cwd=PROJECT_ROOT
    )
    lines = result.stdout.splitlines()
    assert [json.loads(line)["auditID"] for line in lines] == [event.auditID for event in sample_events(3)]
