"""Retention removes whole partitions, oldest first, and records the removal in the chain."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from kubetrail.store import Store
from kubetrail.store.manifest import FileRecord, ManifestEntry, ManifestState
from kubetrail.store.retention import plan_retention
from tests.store.factory import make_events


def _state(*files: tuple[str, str, int]) -> ManifestState:
    state = ManifestState()
    records = [
        FileRecord(
            path=f"data/date={day}/cluster={cluster}/seg-{index}.parquet",
            sha256="x",
            rows=1,
            bytes=size,
            date=day,
            cluster=cluster,
        )
        for index, (day, cluster, size) in enumerate(files)
    ]
    state.apply(ManifestEntry(seq=1, op="seal", time="", prev="", files=records, hash="h"))
    return state


def test_days_remove_partitions_older_than_the_cutoff() -> None:
    state = _state(("2026-03-01", "a", 10), ("2026-03-09", "a", 10), ("2026-03-10", "b", 10), ("2026-03-10", "a", 5))
    plan = plan_retention(state, today=date(2026, 3, 17), retention_days=7)
    assert plan.partitions == [("2026-03-01", "a"), ("2026-03-09", "a")]
    assert plan.bytes == 20
    assert "7 days" in plan.reason


def test_max_bytes_removes_the_oldest_partitions_until_under_the_limit() -> None:
    state = _state(
        ("2026-03-01", "a", 100), ("2026-03-02", "a", 100), ("2026-03-02", "a", 50), ("2026-03-03", "a", 100)
    )
    plan = plan_retention(state, today=date(2026, 3, 3), max_bytes=200)
    assert plan.partitions == [("2026-03-01", "a"), ("2026-03-02", "a")]
    assert len(plan.removed) == 3  # a partition goes whole, both of its files


def test_nothing_to_remove_is_an_empty_plan() -> None:
    state = _state(("2026-03-10", "a", 10))
    plan = plan_retention(state, today=date(2026, 3, 10), retention_days=30, max_bytes=1_000)
    assert plan.removed == [] and plan.reason == ""


def test_store_retention_deletes_partitions_and_forgets_their_dedup_keys(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s") as store:
        store.append("prod", make_events(0, 10, day="2026-01-01"))
        store.append("prod", make_events(50, 10, day="2026-03-19"))
        store.seal()
        plan = store.apply_retention(retention_days=30, today=date(2026, 3, 20))
        assert plan.rows == 10
        assert not (tmp_path / "s" / "data" / "date=2026-01-01").exists()
        rows = store.query_connection().sql("SELECT count(*) FROM events").fetchall()
        assert rows == [(10,)]
    entries = (tmp_path / "s" / "manifest.jsonl").read_text().splitlines()
    assert '"op":"retention"' in entries[-1]
