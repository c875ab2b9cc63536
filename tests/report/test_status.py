"""Pass, fail and not-evidenced from real stores: tampering, short history, empty periods, gaps, bad settings."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kubetrail.check import check_apiserver, parse_config
from kubetrail.report import FRAMEWORKS, Period, Status, Theme, assess
from kubetrail.store import verify_store
from tests.report.helpers import Expected, generate, ingest, kubetrail
from tests.report.test_evidence import evidence_for


def test_a_tampered_segment_fails_integrity(five_days: tuple[Path, Expected], tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(five_days[0], store)
    segment = sorted((store / "data").rglob("*.parquet"))[1]
    table = pq.read_table(segment)
    pq.write_table(table.slice(0, table.num_rows - 1), segment)  # one event quietly removed
    assessment = assess(FRAMEWORKS["pci-dss"], evidence_for(store))
    integrity = assessment.themes[Theme.INTEGRITY]
    assert integrity.status is Status.FAIL
    assert any("altered" in reason and segment.name in reason for reason in integrity.reasons)
    by_id = {item.control.id: item for item in assessment.controls}
    assert by_id["10.3.2"].status is Status.FAIL and by_id["10.3.4"].status is Status.FAIL


def test_an_untouched_store_passes_integrity(five_days: tuple[Path, Expected]) -> None:
    assessment = assess(FRAMEWORKS["hipaa"], evidence_for(five_days[0]))
    assert assessment.themes[Theme.INTEGRITY].status is Status.PASS
    (control,) = [item for item in assessment.controls if item.control.id == "§164.312(c)(1)"]
    assert control.status is Status.PASS and verify_store(five_days[0]).head in control.reasons[0]


def test_five_days_under_a_thirty_day_requirement_fail_retention(five_days: tuple[Path, Expected]) -> None:
    assessment = assess(FRAMEWORKS["cis"], evidence_for(five_days[0]))
    assert assessment.required_days == 30
    retention = assessment.themes[Theme.RETENTION]
    assert retention.status is Status.FAIL
    assert retention.reasons == ["cluster prod: the store holds 5 day(s) (2026-03-15 to 2026-03-19) of the 30 required"]
    assert {item.control.id: item.status for item in assessment.controls}["CIS 1.2.17"] is Status.FAIL


def test_a_lower_requirement_passes_retention(five_days: tuple[Path, Expected]) -> None:
    assessment = assess(FRAMEWORKS["cis"], evidence_for(five_days[0]), required_days=5)
    assert assessment.themes[Theme.RETENTION].status is Status.PASS


def test_an_empty_period_is_not_evidenced(five_days: tuple[Path, Expected]) -> None:
    empty = Period(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC))
    assessment = assess(FRAMEWORKS["soc2"], evidence_for(five_days[0], empty))
    for theme in (Theme.ACCESS_LOGGING, Theme.SECRET_ACCESS, Theme.RBAC_CHANGES, Theme.POD_EXEC):
        result = assessment.themes[theme]
        assert result.status is Status.NOT_EVIDENCED, theme
        assert result.reasons == ["no events were recorded in the period"]
    statuses = {item.control.id: item.status for item in assessment.controls}
    assert statuses["CC6.2"] is Status.NOT_EVIDENCED and statuses["CC6.3"] is Status.NOT_EVIDENCED


def test_activity_in_the_period_is_evidenced(five_days: tuple[Path, Expected]) -> None:
    store, expected = five_days
    assessment = assess(FRAMEWORKS["soc2"], evidence_for(store))
    rbac = assessment.themes[Theme.RBAC_CHANGES]
    assert rbac.status is Status.PASS and rbac.reasons[0].startswith(f"{len(expected.rbac_changes)} RBAC changes")
    assert assessment.themes[Theme.POD_EXEC].status is Status.PASS
    assert assessment.themes[Theme.ACCESS_LOGGING].status is Status.PASS


def test_secret_bodies_in_the_log_fail_secret_access(five_days: tuple[Path, Expected]) -> None:
    # Without a policy the generator records every request at RequestResponse, secrets included.
    result = assess(FRAMEWORKS["pci-dss"], evidence_for(five_days[0])).themes[Theme.SECRET_ACCESS]
    assert result.status is Status.FAIL and "record secrets at Metadata" in result.reasons[0]


@pytest.fixture(scope="module")
def gapped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Events on 2026-03-15 and 2026-03-17 only: the 16th is missing."""
    root = tmp_path_factory.mktemp("gapped")
    first = generate(root / "a.log", start="2026-03-15T10:00:00Z", seconds=600, rate=2, scenarios=False)
    second = generate(root / "b.log", start="2026-03-17T10:00:00Z", seconds=600, rate=2, scenarios=False)
    return ingest(root / "store", first, second)


def test_a_day_without_events_fails_access_logging_and_retention(gapped: Path) -> None:
    evidence = evidence_for(gapped)
    assert [day.isoformat() for day in evidence.period_gap_days] == ["2026-03-16"]
    assessment = assess(FRAMEWORKS["cis"], evidence, required_days=3)
    access = assessment.themes[Theme.ACCESS_LOGGING]
    assert access.status is Status.FAIL and "2026-03-16" in access.reasons[0]
    retention = assessment.themes[Theme.RETENTION]
    assert retention.status is Status.FAIL
    assert "1 day(s) without events" in retention.reasons[-1]


def test_apiserver_settings_fail_their_controls(five_days: tuple[Path, Expected]) -> None:
    config = parse_config(
        "kube-apiserver --audit-log-path=/var/log/audit.log --audit-log-maxage=7 --audit-log-maxbackup=10 "
        "--audit-log-maxsize=100\n",
        "apiserver.flags",
    )
    findings = check_apiserver(config)
    evidence = evidence_for(five_days[0])
    evidence.apiserver = findings
    assessment = assess(FRAMEWORKS["cis"], evidence, required_days=5)
    retention = assessment.themes[Theme.RETENTION]
    assert retention.status is Status.FAIL
    assert any(reason.startswith("CIS 1.2.17: --audit-log-maxage=7") for reason in retention.reasons)
    access = assessment.themes[Theme.ACCESS_LOGGING]
    assert access.status is Status.FAIL  # no --audit-policy-file: CIS 3.2.1
    assert any(reason.startswith("CIS 3.2.1") for reason in access.reasons)


def test_secrets_at_metadata_level_pass_secret_access(tmp_path: Path) -> None:
    """Under a policy that records secrets at Metadata (as CIS 3.2.2 advises), reads are evidenced, values absent."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n"
        '  - level: Metadata\n    resources:\n      - group: ""\n        resources: [secrets]\n'
        "  - level: Request\n"
    )
    log = tmp_path / "audit.log"
    kubetrail(
        "generate", "--start", "2026-03-15T10:00:00Z", "--duration", "1800", "--rate", "2",
        "--scenario", "secret-harvesting", "--policy", str(policy), "-o", str(log),
    )  # fmt: skip
    evidence = evidence_for(ingest(tmp_path / "store", log))
    assert evidence.secret_reads > 0 and evidence.secret_bodies_recorded == 0
    result = assess(FRAMEWORKS["pci-dss"], evidence).themes[Theme.SECRET_ACCESS]
    assert result.status is Status.PASS
    assert result.reasons == [f"{evidence.secret_reads:,} secret reads recorded in the period, listed for review"]
