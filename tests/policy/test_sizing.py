"""Disk and history under rotation, worked out by hand from kube-apiserver 1.37's --audit-log-max* semantics."""

from __future__ import annotations

import pytest

from kubetrail.policy.sizing import MEBIBYTE, RotationSettings, estimate_disk


def test_maxbackup_bounds_history_when_files_fill_before_maxage() -> None:
    estimate = estimate_disk(50 * MEBIBYTE, RotationSettings(100, 10, 30))
    # ten 100 MiB backups at 50 MiB a day hold 20 days, fewer than maxage's 30
    assert estimate.days_of_history == pytest.approx(20.0)
    assert estimate.limited_by == "maxbackup"
    assert estimate.peak_bytes == 11 * 100 * MEBIBYTE
    assert estimate.rotations_per_day == pytest.approx(0.5)
    assert not estimate.holds(30) and estimate.holds(20)


def test_maxage_bounds_history_when_traffic_is_light() -> None:
    estimate = estimate_disk(5 * MEBIBYTE, RotationSettings(100, 10, 30))
    assert estimate.days_of_history == 30.0 and estimate.limited_by == "maxage"
    # 30 days of 5 MiB fill 1.5 files: two backups plus the live file
    assert estimate.peak_bytes == 3 * 100 * MEBIBYTE


def test_flags_left_out_take_the_apiservers_defaults() -> None:
    # CHANGELOG-1.36 (kubernetes/kubernetes#136478): maxsize 100 MB, maxbackup 100, maxage 366 days
    assert RotationSettings() == RotationSettings(max_size_mb=100, max_backups=100, max_age_days=366)


def test_defaults_at_heavy_traffic_are_bounded_by_maxbackup() -> None:
    estimate = estimate_disk(50 * MEBIBYTE, RotationSettings())
    # a hundred 100 MiB backups at 50 MiB a day hold 200 days, fewer than maxage's 366
    assert estimate.days_of_history == pytest.approx(200.0) and estimate.limited_by == "maxbackup"
    assert estimate.peak_bytes == 101 * 100 * MEBIBYTE


def test_defaults_at_light_traffic_are_bounded_by_maxage() -> None:
    estimate = estimate_disk(10 * MEBIBYTE, RotationSettings())
    # 366 days of 10 MiB fill 36.6 files: 37 backups plus the live file
    assert estimate.days_of_history == 366.0 and estimate.limited_by == "maxage"
    assert estimate.peak_bytes == 38 * 100 * MEBIBYTE


def test_maxsize_zero_turns_rotation_off() -> None:
    estimate = estimate_disk(100 * MEBIBYTE, RotationSettings(0, 3, 30))
    # no rotation: maxbackup and maxage never apply, the one file grows until the disk fills
    assert estimate.days_of_history is None and estimate.peak_bytes is None
    assert estimate.rotations_per_day == 0 and "maxsize 0" in estimate.limited_by


def test_no_backup_count_and_no_age_keeps_everything() -> None:
    estimate = estimate_disk(MEBIBYTE, RotationSettings(100, 0, 0))
    assert estimate.days_of_history is None and estimate.peak_bytes is None
    assert estimate.holds(365)


def test_maxage_alone_bounds_history() -> None:
    estimate = estimate_disk(50 * MEBIBYTE, RotationSettings(100, 0, 7))
    assert estimate.days_of_history == 7.0
    assert estimate.peak_bytes == (4 + 1) * 100 * MEBIBYTE  # 350 MiB of backups: four files


def test_nothing_written_needs_no_disk() -> None:
    estimate = estimate_disk(0, RotationSettings(100, 10, 30))
    assert estimate.peak_bytes == 0 and estimate.rotations_per_day == 0
