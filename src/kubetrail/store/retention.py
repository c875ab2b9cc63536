"""Retention: which whole partitions to remove for `--retention-days` and `--max-bytes`.

Only sealed data counts and only whole `date=…/cluster=…/` partitions go, oldest day first; the removal is
then recorded in the manifest chain so that `verify` accepts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from kubetrail.store.manifest import FileRecord, ManifestState


@dataclass
class RetentionPlan:
    """The files to remove, the partitions they make up, and why."""

    removed: list[FileRecord] = field(default_factory=list)
    partitions: list[tuple[str, str]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    @property
    def bytes(self) -> int:
        return sum(record.bytes for record in self.removed)

    @property
    def rows(self) -> int:
        return sum(record.rows for record in self.removed)


def plan_retention(
    state: ManifestState, *, today: date, retention_days: int | None = None, max_bytes: int | None = None
) -> RetentionPlan:
    """Partitions older than `retention_days` full days before `today`, then the oldest until under `max_bytes`."""
    by_partition: dict[tuple[str, str], list[FileRecord]] = {}
    for record in state.live.values():
        by_partition.setdefault((record.date, record.cluster), []).append(record)
    ordered = sorted(by_partition)
    plan = RetentionPlan()
    chosen: list[tuple[str, str]] = []
    if retention_days is not None:
        cutoff = (today - timedelta(days=retention_days)).isoformat()
        old = [partition for partition in ordered if partition[0] < cutoff]
        if old:
            chosen.extend(old)
            plan.reasons.append(f"older than {retention_days} days (before {cutoff})")
    if max_bytes is not None:
        remaining = [partition for partition in ordered if partition not in chosen]
        total = sum(record.bytes for partition in remaining for record in by_partition[partition])
        dropped = 0
        for partition in remaining:
            if total <= max_bytes:
                break
            total -= sum(record.bytes for record in by_partition[partition])
            chosen.append(partition)
            dropped += 1
        if dropped:
            plan.reasons.append(f"over the {max_bytes}-byte limit")
    plan.partitions = chosen
    plan.removed = [record for partition in chosen for record in sorted(by_partition[partition], key=_path)]
    return plan


def _path(record: FileRecord) -> str:
    return record.path
