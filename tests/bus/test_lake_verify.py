"""`kubetrail verify --lake`: every worker's hash chain, verified together; a tampered worker store fails it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kubetrail.bus.lake import worker_store_dir
from kubetrail.cli.main import cli
from kubetrail.store import Store
from tests.store.factory import make_events


def _lake(tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    for index, name in enumerate(("a", "b")):
        with Store.open(worker_store_dir(lake, name)) as store:
            store.append("prod", make_events(index * 100, 25, day="2026-03-19"))
            store.seal()
    return lake


def test_an_untouched_lake_verifies_every_worker(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    result = CliRunner().invoke(cli, ["verify", "--lake", str(lake), "-o", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    assert [(worker["worker"], worker["ok"], worker["events"]) for worker in report["workers"]] == [
        ("a", True, 25),
        ("b", True, 25),
    ]


def test_one_tampered_worker_store_fails_the_lake_and_is_named(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    target = sorted((lake / "worker=b" / "data").rglob("*.parquet"))[0]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x40
    target.write_bytes(bytes(data))
    result = CliRunner().invoke(cli, ["verify", "--lake", str(lake)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(line.startswith("OK      worker a") for line in lines)
    assert any(line.startswith("FAILED  worker b") for line in lines)
    assert any("altered" in line for line in lines)


def test_a_directory_without_worker_stores_is_not_a_verified_lake(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["verify", "--lake", str(tmp_path / "empty")])
    assert result.exit_code == 1
    assert "holds no worker store" in result.output


def test_store_or_lake_is_required(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["verify"])
    assert result.exit_code == 2
    assert "--store DIR or --lake DIR" in result.output
