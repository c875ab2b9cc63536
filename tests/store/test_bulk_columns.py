"""Bulk column building: sealing's lean path gives what `views.flatten` gives, and the tail is bounded in bytes."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from kubetrail.cli.ingest import joined_batches
from kubetrail.intake import Batch
from kubetrail.store import Store, StoreOptions
from kubetrail.store.columns import build_rows, dedup_key
from kubetrail.store.dedup import sorted_keys
from kubetrail.store.seal import sealed_table
from kubetrail.store.views import flatten
from tests.store.factory import make_event, make_events


def test_sealed_rows_equal_the_tail_view_rows_sorted_by_day_cluster_and_time() -> None:
    # two days, out of order, and a second cluster: the sealed layout sorts by (date, cluster, time)
    late = [make_event(index) for index in range(50)]
    early = [make_event(index, day="2026-03-18") for index in range(50, 60)]
    first = build_rows("prod", late + early).record_batch()
    second = build_rows("dev", make_events(100, 20)).record_batch()
    rows = pa.Table.from_batches([first, second])
    assert sealed_table(rows).to_pylist() == flatten(rows).to_pylist()
    days = [row["date"].isoformat() for row in sealed_table(rows).to_pylist()]
    assert days == sorted(days) and days[0] == "2026-03-18"


def test_keys_built_in_bulk_are_the_documented_blake2b_keys() -> None:
    events = make_events(0, 5)
    rows = build_rows("prod", events)
    assert rows.keys == [dedup_key("prod", event.auditID, str(event.stage), b"") for event in events]


def test_sorted_keys_from_arrow_are_distinct_and_ordered() -> None:
    keys = pa.chunked_array([[5, -3, 5], [2**62, -(2**62)]], pa.int64())
    assert list(sorted_keys(keys)) == [-(2**62), -3, 5, 2**62]


def test_the_unsealed_tail_is_bounded_in_bytes_not_only_in_events(tmp_path: Path) -> None:
    bound = 64 << 10  # a few dozen events' JSON
    options = StoreOptions(max_unsealed_bytes=bound, segment_events=40, max_unsealed_events=10**9)
    store = Store.open(tmp_path / "s", options)
    try:
        for start in range(0, 1_000, 20):
            assert store.append("prod", make_events(start, 20)).accepted == 20
            with store._lock:
                held = store._unsealed_bytes_locked()
            assert held <= bound + 40 * 2_000  # the bound, plus at most the active segment that crossed it
    finally:
        store.close()
    read = Store.open(tmp_path / "s", read_only=True)
    try:
        assert read.query_connection().execute("SELECT count(*) FROM events").fetchone() == (1_000,)
    finally:
        read.close(seal=False)


def test_joined_batches_keep_every_event_rejection_and_file_boundary() -> None:
    def batch(start: int, count: int, rejected: int = 0) -> Batch:
        made = Batch(events=make_events(start, count), raws=[None] * count)
        for line in range(rejected):
            made.reject("f", line, "bad")
        return made

    one, two = Path("one.log"), Path("two.log")
    joined = list(
        joined_batches([(one, batch(0, 3, 1)), (one, batch(3, 3)), (one, batch(6, 3)), (two, batch(9, 1))], 6)
    )
    assert [(path, len(item.events), len(item.rejected)) for path, item in joined] == [
        (one, 6, 1),
        (one, 3, 0),
        (two, 1, 0),
    ]
    assert [event.auditID for _, item in joined for event in item.events] == [e.auditID for e in make_events(0, 10)]
