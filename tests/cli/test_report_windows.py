"""`kubetrail report compliance` over a store holding nothing in its default period (30 days back from now)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli
from tests.query.events import event, fill_store

OLD = [
    event("r1", time="2026-03-01T10:00:00.000000Z", verb="get", resource="secrets", namespace="prod", name="db"),
    event("r2", time="2026-03-02T11:00:00.000000Z", verb="list", resource="secrets", namespace="dev"),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fill_store(tmp_path_factory.mktemp("old-store") / "store", OLD)


def _report(store: Path, *more: str) -> tuple[dict[str, object], str]:
    arguments = ["report", "compliance", "--framework", "cis", "--store", str(store), "-o", "json", *more]
    result = CliRunner().invoke(cli, arguments, catch_exceptions=False)
    return json.loads(result.stdout), result.stderr


def test_the_default_period_falls_back_to_the_data_range_with_a_note(store: Path) -> None:
    doc, err = _report(store)
    assert "note: nothing in the last 30d; showing the data's own range 2026-03-01T10:00Z to 2026-03-02T11:00Z" in err
    period, evidence = doc["period"], doc["evidence"]
    assert isinstance(period, dict) and isinstance(evidence, dict)
    assert period["since"].startswith("2026-03-01T10:00:00")
    assert evidence["requests"] == 2
    assert evidence["secret_access"]["requests"] == 2


def test_an_explicit_empty_period_stays_and_gets_a_hint(store: Path) -> None:
    doc, err = _report(store, "--since", "2026-06-01", "--until", "2026-07-01")
    assert "hint: no event since 2026-06-01T00:00Z and before 2026-07-01T00:00Z" in err
    assert "the data spans 2026-03-01T10:00Z to 2026-03-02T11:00Z" in err
    period, evidence = doc["period"], doc["evidence"]
    assert isinstance(period, dict) and isinstance(evidence, dict)
    assert period["since"].startswith("2026-06-01") and evidence["requests"] == 0
