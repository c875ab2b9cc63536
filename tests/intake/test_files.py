"""Rotated sets are read oldest first: lumberjack backups by time, logrotate by number, the live file last."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetrail.intake import IntakeError, expand_inputs


def _touch(directory: Path, *names: str) -> None:
    for name in names:
        (directory / name).write_text("")


def test_lumberjack_backups_then_live_file(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "audit.log",
        "audit-2026-03-19T10-00-00.000.log.gz",
        "audit-2026-03-18T23-59-59.999.log",
        "audit-2026-03-19T09-00-00.000.log.gz",
        ".hidden",
    )
    names = [path.name for path in expand_inputs([str(tmp_path)])]
    assert names == [
        "audit-2026-03-18T23-59-59.999.log",
        "audit-2026-03-19T09-00-00.000.log.gz",
        "audit-2026-03-19T10-00-00.000.log.gz",
        "audit.log",
    ]


def test_logrotate_numbers_highest_first(tmp_path: Path) -> None:
    _touch(tmp_path, "audit.log", "audit.log.1", "audit.log.2.gz", "audit.log.10.gz")
    names = [path.name for path in expand_inputs([str(tmp_path / "audit.log*")])]
    assert names == ["audit.log.10.gz", "audit.log.2.gz", "audit.log.1", "audit.log"]


def test_missing_inputs_are_errors(tmp_path: Path) -> None:
    with pytest.raises(IntakeError):
        expand_inputs([str(tmp_path / "nope.log")])
    with pytest.raises(IntakeError):
        expand_inputs([str(tmp_path / "*.gz")])
