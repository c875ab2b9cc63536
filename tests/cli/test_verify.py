"""`kubetrail verify`: OK with exit 0, or the exact findings with exit 1."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kubetrail.cli.main import cli
from kubetrail.store import Store
from tests.store.factory import make_events


def _store(root: Path) -> Path:
    with Store.open(root) as store:
        store.append("prod", make_events(0, 10))
    return next((root / "data").rglob("*.parquet"))


def test_ok_then_altered(tmp_path: Path) -> None:
    segment = _store(tmp_path / "s")
    runner = CliRunner()
    ok = runner.invoke(cli, ["verify", "--store", str(tmp_path / "s")])
    assert ok.exit_code == 0 and ok.output.startswith("OK: 1 sealed segments, 10 events")
    head = ok.output.strip().splitlines()[-1].removeprefix("head: ")
    data = bytearray(segment.read_bytes())
    data[100] ^= 1
    segment.write_bytes(bytes(data))
    bad = runner.invoke(cli, ["verify", "--store", str(tmp_path / "s"), "--head", head, "-o", "json"])
    assert bad.exit_code == 1
    report = json.loads(bad.output)
    assert [finding["kind"] for finding in report["findings"]] == ["altered"]
    assert report["findings"][0]["path"].endswith(".parquet")
