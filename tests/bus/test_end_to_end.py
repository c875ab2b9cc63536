"""serve --bus → JetStream → workers → lake, with real processes: every acknowledged event once in the lake."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import nats

from kubetrail.bus.lake import open_lake
from kubetrail.intake import read_events
from kubetrail.serve.config import ServeConfig
from kubetrail.serve.server import BackgroundServer
from tests.bus.natsserver import NatsNode, nats_node

__all__ = ["nats_node"]

KUBETRAIL = [sys.executable, "-m", "kubetrail.cli.main"]


def _alerts_in_stream(url: str) -> int:
    async def count() -> int:
        connection = await nats.connect(url)
        try:
            info = await connection.jetstream().stream_info("KUBETRAIL_ALERTS")
            return int(info.state.messages)
        finally:
            await connection.close()

    return asyncio.run(count())


def test_receiver_on_the_bus_and_two_workers_fill_the_lake_once(nats_node: NatsNode, tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    generate = [*KUBETRAIL, "generate", "--duration", "120", "--scenario", "all", "--seed", "9"]
    subprocess.run([*generate, "-o", str(log)], check=True, capture_output=True, timeout=120)
    expected = {(event.auditID, str(event.stage)) for event in read_events(log)}

    front = BackgroundServer(ServeConfig(store=tmp_path / "spool", port=0, bus=nats_node.url, ui=False))
    url = front.start()
    lake = tmp_path / "lake"
    workers = [
        subprocess.Popen(
            [*KUBETRAIL, "worker", "--bus", nats_node.url, "--lake", str(lake), "--id", name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in ("w1", "w2")
    ]
    try:
        posted = subprocess.run(
            [*generate, "--webhook", f"{url}/audit/prod", "--webhook-batch", "200"], capture_output=True, timeout=180
        )
        assert posted.returncode == 0, posted.stderr
        deadline = time.monotonic() + 60
        stored: set[tuple[str, str]] = set()
        while time.monotonic() < deadline:
            if lake.is_dir() and any(lake.iterdir()):
                try:
                    stored = set(open_lake(lake).execute("select audit_id, stage from events").fetchall())
                except Exception:  # a worker's first segment may be mid-creation
                    stored = set()
            if stored == expected:
                break
            time.sleep(0.5)
    finally:
        for worker in workers:
            worker.terminate()
        outputs = [worker.communicate(timeout=60) for worker in workers]
        front.stop()
    assert all(worker.returncode == 0 for worker in workers), outputs
    conn = open_lake(lake)
    rows = conn.execute("select audit_id, stage from events where cluster = 'prod'").fetchall()
    assert len(rows) == len(expected) and set(rows) == expected
    copies = conn.execute("select count(*) from (select * from sealed union all select * from tail)").fetchone()
    assert copies == (len(expected),)  # no worker died: nothing stored twice
    assert _alerts_in_stream(nats_node.url) > 0  # the attack scenarios raised alerts on the workers
    assert sum(b"events stored" in out for out, _ in outputs) == 2
