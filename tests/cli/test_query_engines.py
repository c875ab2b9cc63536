"""`kubetrail query --lake`: every worker's store read together, a redelivered batch counted once."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli
from tests.query.events import fill_store
from tests.query.test_translate import DOCUMENTS


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    lake_module = pytest.importorskip("kubetrail.bus.lake")
    root = tmp_path / "lake"
    fill_store(lake_module.worker_store_dir(root, "w-1"), DOCUMENTS[:4])
    fill_store(lake_module.worker_store_dir(root, "w-2"), DOCUMENTS[2:])  # c and d stored by both workers
    return root


def _ids(output: str) -> list[str]:
    return [row["audit_id"] for row in csv.DictReader(io.StringIO(output))]


def test_a_lake_answers_with_each_event_once(lake: Path) -> None:
    result = CliRunner().invoke(
        cli, ["query", "--lake", str(lake), "-o", "csv", "--fields", "audit_id", "--limit", "0"]
    )
    assert result.exit_code == 0, result.output
    assert _ids(result.stdout) == list("abcdef")


def test_filters_and_windows_apply_to_the_lake(lake: Path) -> None:
    arguments = ["query", "--lake", str(lake), "verb=create", "--until", "2026-03-19T11:00:00Z", "-o", "csv"]
    result = CliRunner().invoke(cli, [*arguments, "--fields", "audit_id"])
    assert result.exit_code == 0, result.output
    assert _ids(result.stdout) == ["c", "d"]


def test_a_lake_and_log_files_do_not_mix(lake: Path, tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text("")
    result = CliRunner().invoke(cli, ["query", "--lake", str(lake), "--file", str(log)])
    assert result.exit_code == 2
    assert "not both" in result.output


def test_a_missing_lake_is_one_line_error(tmp_path: Path) -> None:
    pytest.importorskip("kubetrail.bus.lake")
    result = CliRunner().invoke(cli, ["query", "--lake", str(tmp_path / "nope")])
    assert result.exit_code != 0
    assert "no such lake directory" in result.output
    assert "Traceback" not in result.output
