"""How much disk an audit log takes under the apiserver's `--audit-log-max*` rotation, and how much history fits.

The log backend rotates with lumberjack: the live file grows to `maxsize` MiB (0 means lumberjack's
100 MiB), then is renamed to a timestamped backup. Backups beyond `maxbackup` (0: keep all) and
backups older than `maxage` days (0: keep all) are deleted. Right after a rotation the live file is
empty, so the history that is always on disk is what the backups hold: that is what we report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MEBIBYTE = 1024 * 1024
LUMBERJACK_DEFAULT_MAXSIZE_MB = 100


@dataclass(frozen=True)
class RotationSettings:
    """The `--audit-log-maxsize` (MiB), `--audit-log-maxbackup` and `--audit-log-maxage` (days) values."""

    max_size_mb: int = 0
    max_backups: int = 0
    max_age_days: int = 0

    @property
    def file_bytes(self) -> int:
        """The size at which the live file is rotated."""
        return (self.max_size_mb or LUMBERJACK_DEFAULT_MAXSIZE_MB) * MEBIBYTE


@dataclass(frozen=True)
class DiskEstimate:
    """Disk use and history for one daily volume under one rotation setting.

    `days_of_history` is None when nothing bounds it (no maxbackup and no maxage: the disk fills);
    `peak_bytes` is None in that case too.
    """

    bytes_per_day: float
    settings: RotationSettings
    rotations_per_day: float
    days_of_history: float | None
    peak_bytes: float | None
    limited_by: str

    def holds(self, days: float) -> bool:
        """True when at least `days` of history are always on disk."""
        return self.days_of_history is None or self.days_of_history >= days


def estimate_disk(bytes_per_day: float, settings: RotationSettings) -> DiskEstimate:
    """The history that always fits and the most disk used, for `bytes_per_day` written under `settings`."""
    file_bytes = settings.file_bytes
    rotations = bytes_per_day / file_bytes
    if bytes_per_day <= 0:
        return DiskEstimate(bytes_per_day, settings, 0.0, None, 0.0, "nothing is written")
    by_count = settings.max_backups * file_bytes / bytes_per_day if settings.max_backups else math.inf
    by_age = float(settings.max_age_days) if settings.max_age_days else math.inf
    if by_count is math.inf and by_age is math.inf:
        return DiskEstimate(bytes_per_day, settings, rotations, None, None, "unbounded: no maxbackup or maxage")
    if by_count <= by_age:
        days, limit = by_count, "maxbackup"
        peak = (settings.max_backups + 1) * file_bytes
    else:
        days, limit = by_age, "maxage"
        # backups younger than maxage, each a full file, plus the live one
        backups = math.ceil(by_age * bytes_per_day / file_bytes)
        if settings.max_backups:
            backups = min(backups, settings.max_backups)
        peak = (backups + 1) * file_bytes
    return DiskEstimate(bytes_per_day, settings, rotations, days, float(peak), limit)
