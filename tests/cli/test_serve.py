"""`kubetrail serve` as a user runs it: prints its URL, stores what it acknowledges, exits 0 sealed on a signal."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kubetrail.store import Store, verify_store
from tests.serve.helpers import PROJECT, audit_event, event_list, start_serve

JSON = {"Content-Type": "application/json"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubetrail.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT,
        check=False,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_flushes_seals_and_exits_0(tmp_path: Path, sig: int) -> None:
    store = tmp_path / "store"
    server = start_serve("--store", str(store), "--listen", "127.0.0.1:0")
    assert server.url.startswith("http://127.0.0.1:")
    response = httpx.post(
        f"{server.url}/audit/prod", content=event_list([audit_event(n) for n in range(7)]), headers=JSON
    )
    assert response.status_code == 200
    assert server.stop(sig) == 0, "".join(server.output)
    output = "".join(server.output)
    assert "7 events in 1 sealed files" in output
    assert list((store / "data").rglob("*.parquet"))
    assert not [path for path in (store / "wal").glob("*.wal") if path.stat().st_size > 16]
    assert verify_store(store).ok
    opened = Store.open(store, read_only=True)
    try:
        assert opened.query_connection().execute("select count(*) from events").fetchone() == (7,)
    finally:
        opened.close()


def test_a_config_file_sets_the_options(tmp_path: Path) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text("store: data\nlisten: 127.0.0.1:0\ncluster: edge\n")
    server = start_serve("--config", str(config))
    httpx.post(f"{server.url}/k8s-audit", content=event_list([audit_event(1)]), headers=JSON)
    assert server.stop() == 0
    assert list((tmp_path / "data" / "data").glob("date=*/cluster=edge/*.parquet"))


def test_a_taken_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--store", str(tmp_path / "s"), "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 2
    assert result.stderr.startswith("error: listen: cannot listen on 127.0.0.1:")
    assert "Traceback" not in result.stderr


def test_a_store_in_use_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    server = start_serve("--store", str(store), "--listen", "127.0.0.1:0")
    try:
        result = run("serve", "--store", str(store), "--listen", "127.0.0.1:0")
        assert result.returncode == 2
        assert "another process has this store open" in result.stderr
    finally:
        assert server.stop() == 0


def test_bad_options_are_reported_without_a_traceback(tmp_path: Path) -> None:
    result = run("serve", "--store", str(tmp_path / "s"), "--listen", "8080")
    assert result.returncode == 2 and "HOST:PORT" in result.stderr and "Traceback" not in result.stderr
    result = run("serve", "--store", str(tmp_path / "s"), "--client-ca", str(tmp_path / "ca.pem"))
    assert result.returncode == 2 and "TLS" in result.stderr


def test_help_lists_both_commands() -> None:
    result = run("--help")
    assert "serve" in result.stdout and "apiserver-config" in result.stdout


def test_retention_removes_old_partitions_and_records_it(tmp_path: Path) -> None:
    store = tmp_path / "store"
    old = [audit_event(n) | {"requestReceivedTimestamp": "2020-01-01T00:00:00.000000Z"} for n in range(3)]
    server = start_serve("--store", str(store), "--listen", "127.0.0.1:0")
    assert httpx.post(f"{server.url}/audit/prod", content=event_list(old), headers=JSON).status_code == 200
    assert server.stop() == 0
    assert list((store / "data").glob("date=2020-01-01/cluster=prod/*.parquet"))
    server = start_serve("--store", str(store), "--listen", "127.0.0.1:0", "--retention-days", "30")
    try:
        for _ in range(100):
            metrics = httpx.get(f"{server.url}/metrics").text
            if "kubetrail_store_sealed_files 0" in metrics:
                break
            time.sleep(0.1)
    finally:
        assert server.stop() == 0
    assert not list((store / "data").glob("date=2020-01-01/**/*.parquet"))
    report = verify_store(store)
    assert report.ok and report.removed_by_retention == 1
