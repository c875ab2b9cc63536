"""Sealed data is plain Hive-partitioned, zstd Parquet that any engine reads without kubetrail."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from kubetrail.model import decode_event
from kubetrail.store import Store
from tests.store.factory import make_events


def test_partitions_are_readable_by_duckdb_straight_from_the_directory(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with Store.open(root) as store:
        store.append("prod", make_events(0, 40, day="2026-03-18"))
        store.append("prod", make_events(40, 10, day="2026-03-19", verb="delete"))
        store.append("edge-1", make_events(0, 5, day="2026-03-19"))
    files = sorted(path.relative_to(root).as_posix() for path in (root / "data").rglob("*.parquet"))
    assert [name.rsplit("/", 1)[0] for name in files] == [
        "data/date=2026-03-18/cluster=prod",
        "data/date=2026-03-19/cluster=edge-1",
        "data/date=2026-03-19/cluster=prod",
    ]
    pattern = str(root / "data" / "**" / "*.parquet")
    rows = duckdb.sql(
        f"SELECT cluster, CAST(date AS VARCHAR), verb, count(*) FROM read_parquet('{pattern}', hive_partitioning=true) "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert rows == [
        ("edge-1", "2026-03-19", "get", 5),
        ("prod", "2026-03-18", "get", 40),
        ("prod", "2026-03-19", "delete", 10),
    ]


def test_sealed_files_are_zstd_sorted_by_time_and_keep_the_full_event(tmp_path: Path) -> None:
    root = tmp_path / "s"
    events = make_events(0, 30)
    with Store.open(root) as store:
        store.append("prod", list(reversed(events)))
    (path,) = list((root / "data").rglob("*.parquet"))
    metadata = pq.read_metadata(path)
    assert metadata.row_group(0).column(0).compression == "ZSTD"
    table = pq.read_table(path)
    times = table.column("time").to_pylist()
    assert times == sorted(times)
    first = decode_event(table.column("event")[0].as_py().encode())
    assert first == events[0]
