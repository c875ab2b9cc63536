"""Backfill is first-class: `ingest` detects as `serve` does, stores exactly the alerts `detect` prints, and
raises nothing twice when the same file comes again; the UI's data and the compliance report then see them."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli
from kubetrail.report.evidence import Period, collect_evidence
from kubetrail.store import Store


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def attack_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("attack") / "attack.log"
    code, _, err = _run(
        "generate", "--scenario", "all", "--duration", "900", "--rate", "8", "--seed", "3", "-o", str(path)
    )
    assert code == 0, err
    return path


def stored_alerts(store_dir: Path) -> Counter[tuple[str, str]]:
    store = Store.open(store_dir, read_only=True)
    try:
        rows = store.query_connection().execute("SELECT rule, audit_id FROM alerts").fetchall()
    finally:
        store.close(seal=False)
    return Counter((rule, audit_id) for rule, audit_id in rows)


def test_ingest_stores_the_alerts_detect_prints_once(attack_log: Path, tmp_path: Path) -> None:
    code, out, err = _run("detect", str(attack_log), "-o", "json", "-q")
    assert code == 0, err
    printed = Counter((alert["rule"], alert["auditID"]) for alert in map(json.loads, out.splitlines()))
    assert len(printed) > 10 and max(printed.values()) == 1

    store = tmp_path / "store"
    code, out, err = _run("ingest", "--store", str(store), "-o", "json", str(attack_log))
    assert code == 0, err
    summary = json.loads(out)
    assert summary["alerts"] == sum(printed.values())
    assert stored_alerts(store) == printed

    code, out, err = _run("ingest", "--store", str(store), "-o", "json", str(attack_log))
    assert code == 0, err
    again = json.loads(out)
    assert (again["accepted"], again["alerts"]) == (0, 0)
    assert stored_alerts(store) == printed

    read = Store.open(store, read_only=True)
    try:
        evidence = collect_evidence(
            read.query_connection(), Period(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
        )
    finally:
        read.close(seal=False)
    assert sum(item.count for item in evidence.alerts) == sum(printed.values())


def test_no_detect_stores_events_only(attack_log: Path, tmp_path: Path) -> None:
    code, out, err = _run("ingest", "--store", str(tmp_path / "store"), "--no-detect", "-o", "json", str(attack_log))
    assert code == 0, err
    assert json.loads(out)["alerts"] is None
    assert stored_alerts(tmp_path / "store") == Counter()
