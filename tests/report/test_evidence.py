"""Evidence numbers against counts made by reading the generated log directly."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from kubetrail.detect.alert import Alert
from kubetrail.detect.priority import Priority
from kubetrail.report.evidence import Evidence, Period, collect_evidence
from kubetrail.store import Store, verify_store
from kubetrail.store.alerts import AlertLog
from tests.report.helpers import Expected

PERIOD = Period(datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 25, tzinfo=UTC))


def evidence_for(store_dir: Path, period: Period = PERIOD) -> Evidence:
    store = Store.open(store_dir, read_only=True)
    try:
        conn = store.query_connection()
    finally:
        store.close(seal=False)
    try:
        return collect_evidence(conn, period, verify=verify_store(store_dir))
    finally:
        conn.close()


@pytest.fixture(scope="module")
def measured(five_days: tuple[Path, Expected]) -> tuple[Evidence, Expected]:
    store, expected = five_days
    return evidence_for(store), expected


def test_counts_requests_once_per_audit_id(measured: tuple[Evidence, Expected]) -> None:
    evidence, expected = measured
    assert evidence.requests == len(expected.requests)
    assert evidence.events > evidence.requests  # several stages per request, counted once


def test_secret_reads_by_user_and_namespace(measured: tuple[Evidence, Expected]) -> None:
    evidence, expected = measured
    found = {(item.user, item.namespace): item.requests for item in evidence.secret_access}
    assert found == {key: len(ids) for key, ids in expected.secret_reads.items()}
    assert evidence.secret_reads == sum(len(ids) for ids in expected.secret_reads.values()) > 0
    assert sum(count for _, count in evidence.secret_reads_per_day) == evidence.secret_reads


def test_rbac_changes_and_exec_sessions(measured: tuple[Evidence, Expected]) -> None:
    evidence, expected = measured
    assert expected.rbac_changes and expected.exec_sessions
    assert evidence.rbac_change_count == len(expected.rbac_changes)
    assert {item.audit_id for item in evidence.rbac_changes} == expected.rbac_changes
    assert evidence.exec_count == len(expected.exec_sessions)
    assert {item.audit_id for item in evidence.exec_sessions} == expected.exec_sessions
    assert all(item.subresource in ("exec", "attach", "portforward") for item in evidence.exec_sessions)


def test_requests_per_day_cover_the_whole_period(measured: tuple[Evidence, Expected]) -> None:
    evidence, expected = measured
    days = dict(evidence.events_per_day)
    assert list(days) == PERIOD.days() and len(days) == 15
    assert {day: count for day, count in days.items() if count} == dict(expected.per_day)


def test_retention_window_held(measured: tuple[Evidence, Expected]) -> None:
    evidence, expected = measured
    (held,) = evidence.retention
    assert held.cluster == "prod"
    assert held.oldest.date() == min(expected.days) == date(2026, 3, 15)
    assert held.newest.date() == max(expected.days) == date(2026, 3, 19)
    assert held.days_covered == 5 and held.gap_days == []


def test_integrity_from_verify(measured: tuple[Evidence, Expected]) -> None:
    evidence, _ = measured
    assert evidence.integrity is not None and evidence.integrity.ok
    assert evidence.integrity.events == evidence.events
    assert len(evidence.integrity.head) == 64


def test_a_period_outside_the_data_finds_nothing(five_days: tuple[Path, Expected]) -> None:
    store, _ = five_days
    evidence = evidence_for(store, Period(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC)))
    assert evidence.requests == 0 and evidence.secret_access == [] and evidence.rbac_change_count == 0
    assert evidence.period_gap_days == []  # days outside the store's history are retention's business
    assert evidence.retention[0].days_covered == 5


def _alert(rule: str, priority: Priority, when: datetime) -> Alert:
    return Alert(
        rule=rule,
        priority=priority,
        source="k8s_audit",
        time_ns=int(when.timestamp()) * 1_000_000_000,
        message=f"{rule} fired",
        output_fields={},
        tags=(),
        audit_id="a-1",
        cluster="prod",
    )


def test_alerts_in_the_period_by_rule(five_days: tuple[Path, Expected], tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(five_days[0], store)
    AlertLog(store).append(
        [
            _alert("Exec into pod", Priority.NOTICE, datetime(2026, 3, 16, 10, tzinfo=UTC)),
            _alert("Exec into pod", Priority.NOTICE, datetime(2026, 3, 17, 10, tzinfo=UTC)),
            _alert("Secret harvesting", Priority.CRITICAL, datetime(2026, 3, 18, 10, tzinfo=UTC)),
            _alert("Secret harvesting", Priority.CRITICAL, datetime(2026, 4, 2, 10, tzinfo=UTC)),  # after the period
        ]
    )
    alerts = evidence_for(store).alerts
    assert [(item.rule, item.priority, item.count) for item in alerts] == [
        ("Secret harvesting", "Critical", 1),
        ("Exec into pod", "Notice", 2),
    ]


def test_no_alerts_in_a_store_without_any(measured: tuple[Evidence, Expected]) -> None:
    assert measured[0].alerts == []
