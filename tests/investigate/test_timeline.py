"""`timeline`: one identity's requests in order, split into sessions at long pauses."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from kubetrail.investigate import timeline
from kubetrail.query.source import open_files
from tests.query.events import event, write_ndjson

SA = "system:serviceaccount:ci:deployer"
DOCUMENTS = [
    event("1", stage="RequestReceived", code=None, time="2026-03-19T10:00:00.000000Z"),
    event("1", time="2026-03-19T10:00:00.000000Z"),
    event("2", verb="list", resource="secrets", time="2026-03-19T10:20:00.000000Z", code=403),
    # 40 minutes later: a new session, from another address
    event("3", verb="delete", time="2026-03-19T11:00:00.000000Z", ips=("198.51.100.7",)),
    event("4", verb="delete", time="2026-03-19T11:01:00.000000Z", ips=("198.51.100.7",)),
    event("5", user="someone-else", time="2026-03-19T10:30:00.000000Z"),
    event("6", user=SA, verb="create", resource="deployments", time="2026-03-19T10:30:00.000000Z"),
]


def test_sessions_split_at_the_gap(tmp_path: Path) -> None:
    with open_files([write_ndjson(tmp_path / "audit.log", DOCUMENTS)]) as source:
        result = timeline(source, "jane@example.com")
    assert [(item.requests, item.denied) for item in result.sessions] == [(2, 1), (2, 0)]
    first, second = result.sessions
    assert first.start.isoformat() == "2026-03-19T10:00:00+00:00" and first.end.minute == 20
    assert second.source_ips == ["198.51.100.7"]
    assert second.top_actions == ["delete pods x2"]
    assert result.report.events.num_rows == 5  # every stage, in order
    assert result.report.events.column("time").to_pylist() == sorted(result.report.events.column("time").to_pylist())


def test_a_longer_gap_joins_them(tmp_path: Path) -> None:
    with open_files([write_ndjson(tmp_path / "audit.log", DOCUMENTS)]) as source:
        result = timeline(source, "jane@example.com", gap=timedelta(hours=1))
    assert len(result.sessions) == 1 and result.sessions[0].requests == 4


def test_service_account_by_namespace_and_name(tmp_path: Path) -> None:
    with open_files([write_ndjson(tmp_path / "audit.log", DOCUMENTS)]) as source:
        result = timeline(source, "sa:ci/deployer")
    assert [item.top_actions for item in result.sessions] == [["create deployments x1"]]
