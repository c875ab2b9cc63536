"""How much disk an audit log takes under the apiserver's `--audit-log-max*` rotation, and how much history fits.

kube-apiserver 1.37's rules (unchanged since 1.36, kubernetes/kubernetes#136478): the live file grows
to `maxsize` MiB (default 100), then is renamed to a timestamped backup; `maxsize 0` turns rotation off,
so the one file grows until the disk fills. Backups beyond `maxbackup` (default 100; 0: keep all) and
backups older than `maxage` days (default 366; 0: keep all) are deleted. Right after a rotation the live
file is empty, so the history that is always on disk is what the backups hold: that is what we report.
Before 1.36 the defaults were maxbackup 0 and maxage 0 and `maxsize 0` meant 100 MiB: to size an older
apiserver, give the values those meant (maxsize 100 for 0 or absent, maxbackup 0, maxage 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MEBIBYTE = 1024 * 1024
DEFAULT_MAX_SIZE_MB = 100
DEFAULT_MAX_BACKUPS = 100
DEFAULT_MAX_AGE_DAYS = 366


@dataclass(frozen=True)
class RotationSettings:
    """The `--audit-log-maxsize` (MiB), `--audit-log-maxbackup` and `--audit-log-maxage` (days) values.

    Each defaults to kube-apiserver's default, so a flag left out is told apart from an explicit 0.
    """

    max_size_mb: int = DEFAULT_MAX_SIZE_MB
    max_backups: int = DEFAULT_MAX_BACKUPS
    max_age_days: int = DEFAULT_MAX_AGE_DAYS

    @property
    def rotates(self) -> bool:
        """False for `maxsize 0`: the live file is never rotated."""
        return self.max_size_mb != 0

    @property
    def file_bytes(self) -> int | None:
        """The size at which the live file is rotated (None when it never is)."""
        return self.max_size_mb * MEBIBYTE if self.rotates else None


@dataclass(frozen=True)
class DiskEstimate:
    """Disk use and history for one daily volume under one rotation setting.

    `days_of_history` is None when nothing bounds it (maxsize 0, or maxbackup 0 and maxage 0: the disk
    fills); `peak_bytes` is None in that case too.
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
    if bytes_per_day <= 0:
        return DiskEstimate(bytes_per_day, settings, 0.0, None, 0.0, "nothing is written")
    if file_bytes is None:
        return DiskEstimate(bytes_per_day, settings, 0.0, None, None, "unbounded: maxsize 0 turns rotation off")
    rotations = bytes_per_day / file_bytes
    by_count = settings.max_backups * file_bytes / bytes_per_day if settings.max_backups else math.inf
    by_age = float(settings.max_age_days) if settings.max_age_days else math.inf
    if by_count is math.inf and by_age is math.inf:
        unbounded = "unbounded: maxbackup 0 and maxage 0 keep every backup"
        return DiskEstimate(bytes_per_day, settings, rotations, None, None, unbounded)
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
