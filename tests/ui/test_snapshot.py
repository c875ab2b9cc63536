"""The UI's snapshot of a live store: it sees acknowledged events before and after sealing, exactly once, and its
pre-aggregation counts what the events say."""

from __future__ import annotations

import json
from pathlib import Path

from kubetrail.model import decode_event
from kubetrail.store import Store
from kubetrail.ui.snapshot import StoreSnapshot
from tests.serve.helpers import audit_event


def _append(store: Store, numbers: range, cluster: str = "prod") -> None:
    raws = [json.dumps(audit_event(number)).encode() for number in numbers]
    store.append(cluster, [decode_event(raw) for raw in raws], raws)


def _counts(snapshot: StoreSnapshot) -> tuple[int, int, int]:
    cursor = snapshot.cursor()
    try:
        events, distinct = cursor.execute("SELECT count(*), count(DISTINCT audit_id) FROM events").fetchone() or (0, 0)
        aggregated = cursor.execute("SELECT coalesce(sum(n), 0) FROM agg_all").fetchone()
    finally:
        cursor.close()
    return int(events), int(distinct), int(aggregated[0] if aggregated else 0)


def test_events_are_seen_once_through_appends_and_sealing(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    try:
        snapshot = StoreSnapshot(store, max_age=0)
        assert _counts(snapshot) == (0, 0, 0)
        _append(store, range(0, 100))
        assert _counts(snapshot) == (100, 100, 100)
        _append(store, range(100, 250))
        assert _counts(snapshot) == (250, 250, 250)
        store.seal()
        assert store.stats().sealed_rows == 250
        assert _counts(snapshot) == (250, 250, 250)
        _append(store, range(250, 300))
        assert _counts(snapshot) == (300, 300, 300)
        cursor = snapshot.cursor()
        by_user = cursor.execute('SELECT "user", sum(n) FROM agg_all GROUP BY 1').fetchall()
        cursor.close()
        assert by_user == [("system:serviceaccount:default:web", 300)]
        snapshot.close()
    finally:
        store.close()


def test_a_snapshot_is_reused_until_it_is_too_old(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    try:
        snapshot = StoreSnapshot(store, max_age=3600)
        _append(store, range(0, 10))
        assert _counts(snapshot)[0] == 10
        _append(store, range(10, 20))
        assert _counts(snapshot)[0] == 10
        snapshot.max_age = 0
        assert _counts(snapshot)[0] == 20
        snapshot.close()
    finally:
        store.close()
