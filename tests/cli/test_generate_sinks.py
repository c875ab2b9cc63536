"""`kubetrail generate` into a rotated set (the log backend) and into a webhook (a real `serve` on loopback)."""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
from pathlib import Path

from kubetrail.intake import read_events
from kubetrail.serve.config import ServeConfig
from kubetrail.serve.server import BackgroundServer

KUBETRAIL = [sys.executable, "-m", "kubetrail.cli.main"]
SIZED = ["--duration", "300", "--rate", "40", "--seed", "3"]
# lumberjack's backup name: NAME-<UTC time, 2006-01-02T15-04-05.000>.EXT, plus .gz when compressed
BACKUP = re.compile(r"^audit-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}\.log\.gz$")


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*KUBETRAIL, *args], capture_output=True, timeout=180, check=False)


def test_rotated_set_holds_the_whole_stream_in_lumberjack_names(tmp_path: Path) -> None:
    plain = tmp_path / "plain.log"
    assert run("generate", *SIZED, "-o", str(plain)).returncode == 0
    rotated_dir = tmp_path / "rotated"
    rotated_dir.mkdir()
    live = rotated_dir / "audit.log"
    result = run("generate", *SIZED, "-o", str(live), "--log-maxsize", "1", "--log-maxbackup", "100", "--log-compress")
    assert result.returncode == 0, result.stderr
    backups = sorted(path.name for path in rotated_dir.iterdir() if path != live)
    assert len(backups) >= 2 and all(BACKUP.match(name) for name in backups), backups
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in rotated_dir.iterdir())
    joined = b"".join(gzip.decompress((rotated_dir / name).read_bytes()) for name in backups) + live.read_bytes()
    assert joined == plain.read_bytes()  # backups sort by time, oldest first: nothing lost or reordered
    for name in backups:
        assert (rotated_dir / name).stat().st_size < 1024 * 1024


def test_maxbackup_removes_the_oldest_backups(tmp_path: Path) -> None:
    live = tmp_path / "audit.log"
    result = run("generate", *SIZED, "-o", str(live), "--log-maxsize", "1", "--log-maxbackup", "2")
    assert result.returncode == 0, result.stderr
    backups = sorted(path.name for path in tmp_path.iterdir() if path != live)
    assert len(backups) == 2


def test_webhook_delivers_every_event_to_serve(tmp_path: Path) -> None:
    expected = tmp_path / "expected.log"
    assert run("generate", "--duration", "60", "--scenario", "all", "-o", str(expected)).returncode == 0
    server = BackgroundServer(ServeConfig(store=tmp_path / "store", port=0))
    url = server.start()
    try:
        result = run("generate", "--duration", "60", "--scenario", "all", "--webhook", f"{url}/audit/dev")
        assert result.returncode == 0, result.stderr
        store = server.app.store
        assert store is not None
        rows = store.query_connection().execute("select audit_id, stage from events where cluster = 'dev'").fetchall()
    finally:
        server.stop()
    wanted = {(event.auditID, str(event.stage)) for event in read_events(expected)}
    assert set(rows) == wanted and len(rows) == len(wanted)


def test_unreachable_webhook_fails_with_the_count_not_delivered() -> None:
    target = [
        "--webhook",
        "http://127.0.0.1:9/audit/x",
        "--webhook-batch",
        "100000",
        "--webhook-initial-backoff",
        "0.01",
    ]
    result = run("generate", "--duration", "5", *target)
    assert result.returncode == 1
    assert b"NOT delivered" in result.stderr and b"Traceback" not in result.stderr
