"""The UI's queries on a small store whose contents the test wrote: what they return follows from the events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubetrail.model import decode_event
from kubetrail.store import Store
from kubetrail.ui.data import UIData
from kubetrail.ui.snapshot import StoreSnapshot
from tests.serve.helpers import audit_event


def _event(number: int, verb: str, resource: str, name: str, user: str = "jane") -> dict[str, Any]:
    event = audit_event(number)
    event["verb"] = verb
    event["user"]["username"] = user
    event["objectRef"] = {"resource": resource, "namespace": "prod", "name": name, "apiVersion": "v1"}
    return event


def _store(tmp_path: Path, events: list[dict[str, Any]]) -> Store:
    store = Store.open(tmp_path / "store")
    raws = [json.dumps(event).encode() for event in events]
    store.append("prod", [decode_event(raw) for raw in raws], raws)
    return store


def test_recent_objects_are_the_latest_changes_without_lease_renewals(tmp_path: Path) -> None:
    store = _store(
        tmp_path,
        [
            _event(100, "create", "configmaps", "a"),
            _event(200, "update", "deployments", "web"),
            _event(300, "get", "secrets", "db"),
            _event(400, "update", "leases", "node-1"),
            _event(500, "patch", "configmaps", "a"),
        ],
    )
    try:
        data = UIData(StoreSnapshot(store))
        recent = [(resource, name, verb) for resource, _, name, _, verb in data.recent_objects()]
        assert recent == [("configmaps", "a", "patch"), ("deployments", "web", "update")]
    finally:
        store.close()


def test_identity_summary_counts_what_the_user_did(tmp_path: Path) -> None:
    events = [_event(10 + number, "get", "pods", f"p{number}") for number in range(5)]
    events.append(_event(99, "delete", "pods", "p0"))
    events.append(_event(120, "get", "pods", "x", user="someone-else"))
    store = _store(tmp_path, events)
    try:
        summary = UIData(StoreSnapshot(store)).identity_summary("jane")
        assert summary["events"] == 6 and summary["forbidden"] == 0
        assert [tuple(row) for row in summary["verbs"]] == [("get", 5), ("delete", 1)]
        assert (
            summary["first"].strftime("%H:%M:%S") == "00:00:10" and summary["last"].strftime("%H:%M:%S") == "00:01:39"
        )
    finally:
        store.close()


def test_a_window_counts_back_from_now_and_falls_back_to_the_data_range() -> None:
    from datetime import UTC, datetime, timedelta

    from kubetrail.ui.data import span_for

    first, last = datetime(2026, 3, 19, 10, tzinfo=UTC), datetime(2026, 3, 19, 12, tzinfo=UTC)
    live = span_for("1h", first, last, last + timedelta(minutes=20))
    assert (live.since, live.until, live.note) == (last - timedelta(minutes=40), last + timedelta(minutes=20), "")
    old = span_for("1h", first, last, last + timedelta(days=200))
    assert (old.since, old.until) == (first, last) and "nothing in the last 1h" in old.note
    assert span_for("all", first, last, last + timedelta(days=200)).note == ""


def test_overview_counts_only_the_window_it_shows(tmp_path: Path) -> None:
    from datetime import timedelta

    events = [_event(60 * minute, "get", "pods", f"p{minute}") for minute in range(0, 120, 10)]
    store = _store(tmp_path, events)
    try:
        newest = max(event["requestReceivedTimestamp"] for event in events)
        from kubetrail.model import parse_microtime

        now = parse_microtime(newest) + timedelta(minutes=5)
        data = UIData(StoreSnapshot(store), clock=lambda: now)
        hour = data.overview("1h")
        expected = sum(
            1 for event in events if parse_microtime(event["requestReceivedTimestamp"]) >= now - timedelta(hours=1)
        )
        assert hour.in_window == expected and hour.span is not None and not hour.span.note
        assert sum(sum(values) for values in hour.events.values()) == expected
        assert data.overview("all").in_window == len(events)
    finally:
        store.close()
