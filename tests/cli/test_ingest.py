"""`kubetrail ingest`: load files into a store, report accepted / duplicates / rejected, never store twice."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from kubetrail.cli.ingest import parse_size
from kubetrail.cli.main import cli
from kubetrail.store import Store
from tests.store.factory import make_events, ndjson


def _count(store_dir: Path) -> int:
    with Store.open(store_dir, read_only=True) as store:
        rows = store.query_connection().sql("SELECT count(*) FROM events").fetchall()
    return int(rows[0][0])


def test_ingest_twice_stores_once_and_reports_rejects(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(ndjson(make_events(0, 50)) + b"garbage line\n")
    store_dir = tmp_path / "store"
    runner = CliRunner()
    args = ["ingest", "--store", str(store_dir), "--cluster", "prod", "-o", "json", "--strict", str(log)]
    first = runner.invoke(cli, args)
    assert first.exit_code == 1, first.output  # a line was refused, and --strict makes that an error
    summary = json.loads(first.stdout)
    assert (summary["accepted"], summary["duplicates"], summary["rejected"]) == (50, 0, 1)
    dead = Path(summary["dead_letter"]).read_text().splitlines()
    assert json.loads(dead[0])["raw"] == "garbage line" and json.loads(dead[0])["line"] == 51
    second = runner.invoke(cli, ["ingest", "--store", str(store_dir), "--cluster", "prod", "-o", "json", str(log)])
    assert json.loads(second.stdout)["duplicates"] == 50
    assert _count(store_dir) == 50


def test_rotated_directory_and_text_summary(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "audit-2026-03-19T09-00-00.000.log.gz").write_bytes(gzip.compress(ndjson(make_events(0, 20))))
    (logs / "audit.log").write_bytes(ndjson(make_events(20, 5)))
    result = CliRunner().invoke(cli, ["ingest", "--store", str(tmp_path / "s"), str(logs)])
    assert result.exit_code == 0, result.output
    assert "accepted    25 new events" in result.output
    assert _count(tmp_path / "s") == 25


def test_retention_flags_apply_after_loading(tmp_path: Path) -> None:
    log = tmp_path / "old.log"
    log.write_bytes(ndjson(make_events(0, 10, day="2020-01-01")))
    result = CliRunner().invoke(cli, ["ingest", "--store", str(tmp_path / "s"), "--retention-days", "30", str(log)])
    assert result.exit_code == 0, result.output
    assert "retention   removed 1 sealed file(s)" in result.output
    assert _count(tmp_path / "s") == 0


def test_a_bad_cluster_name_is_one_line_error(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(ndjson(make_events(0, 1)))
    result = CliRunner().invoke(cli, ["ingest", "--store", str(tmp_path / "s"), "--cluster", "../etc", str(log)])
    assert result.exit_code == 2
    assert "invalid cluster name" in result.output


def test_sizes() -> None:
    assert parse_size("4096") == 4096
    assert parse_size("500M") == 500 * 1024**2
    assert parse_size("10GiB") == 10 * 1024**3


def test_ingest_then_verify_as_real_processes(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(ndjson(make_events(0, 30)))
    store_dir = tmp_path / "s"
    ingest = subprocess.run(
        [sys.executable, "-m", "kubetrail.cli.main", "ingest", "--store", str(store_dir), str(log)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    verify = subprocess.run(
        [sys.executable, "-m", "kubetrail.cli.main", "verify", "--store", str(store_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith("OK: 1 sealed segments, 30 events"), verify.stdout


def test_a_line_nested_deeper_than_the_apiserver_allows_costs_only_itself(tmp_path: Path) -> None:
    """It used to crash ingest with a RecursionError traceback."""
    events = make_events(0, 3)
    lines = ndjson(events).splitlines()
    deep = lines[1][:-1] + b',"requestObject":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    log = tmp_path / "audit.log"
    log.write_bytes(b"\n".join([lines[0], deep, lines[2]]) + b"\n")
    result = CliRunner().invoke(cli, ["ingest", "--store", str(tmp_path / "s"), "--no-detect", "-o", "json", str(log)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["accepted"], summary["rejected"]) == (2, 1)
    assert "nested too deeply" in next(iter(summary["rejected_reasons"]))
