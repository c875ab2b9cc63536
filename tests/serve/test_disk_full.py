"""A full disk under a real HTTP server on loopback: 503 with Retry-After, nothing acknowledged lost, readable after.

The WAL's system calls are replaced (the store's injection point) by ones that fail with ENOSPC while the
"disk" is full; the emit package's webhook client, which retries as kube-apiserver's does, is the sender.
"""

from __future__ import annotations

import errno
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kubetrail.emit.kubeconfig import WebhookClientConfig
from kubetrail.emit.webhook import WebhookBackend
from kubetrail.model import decode_event
from kubetrail.serve.config import build_config
from kubetrail.serve.server import BackgroundServer
from kubetrail.store import FileOps, Store, verify_store
from tests.serve.helpers import audit_event, audit_ids, event_list

JSON = {"Content-Type": "application/json"}


class Disk(FileOps):
    """ENOSPC on every WAL write and fsync while `full` is set."""

    def __init__(self) -> None:
        self.full = threading.Event()

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if self.full.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(fd, data)

    def fsync(self, fd: int) -> None:
        if self.full.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        super().fsync(fd)


@pytest.fixture
def disk() -> Disk:
    return Disk()


@pytest.fixture
def server(tmp_path: Path, disk: Disk) -> Iterator[BackgroundServer]:
    running = BackgroundServer(
        build_config({}, {"store": str(tmp_path / "store"), "listen": "127.0.0.1:0"}), file_ops=disk
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_a_full_disk_answers_503_and_loses_nothing_acknowledged(
    server: BackgroundServer, disk: Disk, tmp_path: Path
) -> None:
    acknowledged: list[str] = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for batch in range(3):
            events = [audit_event(batch * 10 + number) for number in range(10)]
            assert client.post("/audit/prod", content=event_list(events), headers=JSON).status_code == 200
            acknowledged.extend(event["auditID"] for event in events)
        disk.full.set()
        refused = [audit_event(100 + number) for number in range(10)]
        response = client.post("/audit/prod", content=event_list(refused), headers=JSON)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200
        disk.full.clear()
        retried = client.post("/audit/prod", content=event_list(refused), headers=JSON)
        assert retried.status_code == 200 and retried.json()["accepted"] == 10
        acknowledged.extend(event["auditID"] for event in refused)
        assert client.get("/readyz").status_code == 200
    server.stop()
    stored = audit_ids(tmp_path / "store")
    assert sorted(stored) == sorted(acknowledged)
    assert verify_store(tmp_path / "store").ok


def test_the_apiserver_style_sender_retries_until_space_returns(server: BackgroundServer, disk: Disk) -> None:
    backend = WebhookBackend(WebhookClientConfig(server=f"{server.url}/audit/prod"), initial_backoff=0.05)
    events = [decode_event(json.dumps(audit_event(number)).encode()) for number in range(5)]
    disk.full.set()
    threading.Timer(0.3, disk.full.clear).start()
    assert backend.process_events(events)
    assert backend.stats.posts >= 2, "the first POST found the disk full and was answered 503"
    backend.shutdown()
    store = server.app.store
    assert isinstance(store, Store)
    rows = store.query_connection().execute("select count(*) from events").fetchone()
    assert rows == (5,)
