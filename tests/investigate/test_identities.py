"""`new-identities`: identities whose first request falls in the window; earlier data is the baseline."""

from __future__ import annotations

from pathlib import Path

from kubetrail.investigate import new_identities
from kubetrail.query.source import Window, open_files
from tests.query.events import event, write_ndjson

DOCUMENTS = [
    event("1", user="jane", time="2026-03-17T09:00:00.000000Z"),
    event("2", user="jane", time="2026-03-19T09:00:00.000000Z"),
    event("3", user="system:serviceaccount:ci:default", time="2026-03-19T08:00:00.000000Z", ips=("203.0.113.77",)),
    event("4", user="system:serviceaccount:ci:default", verb="list", time="2026-03-19T08:05:00.000000Z"),
    event("5", user="mallory", time="2026-03-18T20:00:00.000000Z"),
]


def test_default_window_is_the_last_day_of_data(tmp_path: Path) -> None:
    with open_files([write_ndjson(tmp_path / "audit.log", DOCUMENTS)]) as source:
        report = new_identities(source)
    rows = report.summary.to_pylist()
    assert [(row["user"], row["kind"], row["requests"]) for row in rows] == [
        ("mallory", "user", 1),
        ("system:serviceaccount:ci:default", "serviceaccount", 2),
    ]
    assert rows[1]["first_action"] == "get pods"
    assert set(report.events.column("audit_id").to_pylist()) == {"3", "4", "5"}


def test_explicit_window(tmp_path: Path) -> None:
    with open_files([write_ndjson(tmp_path / "audit.log", DOCUMENTS)]) as source:
        report = new_identities(source, Window(since="2026-03-19T00:00:00Z"))
    assert report.summary.column("user").to_pylist() == ["system:serviceaccount:ci:default"]
