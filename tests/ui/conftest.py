"""A real `kubetrail serve` over a store filled the way users fill it: `ingest` of one generated log, then the
webhook with another log that holds attacks (so detection stores alerts), plus one hostile event."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve.helpers import PROJECT, ServeProcess, event_list, start_serve

XSS_USER = '<script>alert("owned")</script><img src=x onerror=alert(1)>'
XSS_AUDIT_ID = "0badc0de-0000-4000-8000-00000000xss1"


def kubetrail(*arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "kubetrail.cli.main", *arguments],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def hostile_event() -> dict[str, Any]:
    """An event whose attacker-controlled fields carry markup."""
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": XSS_AUDIT_ID,
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/pods/x",
        "verb": "get",
        "user": {"username": XSS_USER, "groups": ["system:authenticated"]},
        "sourceIPs": ["10.9.9.9"],
        "userAgent": "<b>agent</b>",
        "objectRef": {"resource": "pods", "namespace": "default", "name": "<i>pod</i>", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2026-03-19T12:30:00.000000Z",
        "stageTimestamp": "2026-03-19T12:30:00.000000Z",
    }


@dataclass
class UIServer:
    """The running server and the logs it was filled from (the tests' oracle)."""

    url: str
    store: Path
    ingested: list[dict[str, Any]]
    posted: list[dict[str, Any]]
    process: ServeProcess

    @property
    def events(self) -> list[dict[str, Any]]:
        return [*self.ingested, *self.posted]


def _wait_for_alerts(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if 'class="alert-row' in httpx.get(f"{url}/ui/alerts", timeout=10).text:
            return
        time.sleep(0.3)


@pytest.fixture(scope="package")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    work = tmp_path_factory.mktemp("ui")
    store = work / "store"
    ingested_log, posted_log = work / "ingested.log", work / "posted.log"
    kubetrail("generate", "--duration", "300", "--rate", "5", "--seed", "11", "-o", str(ingested_log))
    kubetrail(
        "generate", "--duration", "120", "--rate", "5", "--scenario", "all", "--seed", "12",
        "--start", "2026-03-19T11:00:00Z", "-o", str(posted_log),
    )  # fmt: skip
    kubetrail("ingest", "--store", str(store), "--cluster", "prod", "--no-progress", str(ingested_log))
    process = start_serve("--store", str(store), "--listen", "127.0.0.1:0", "--cluster", "prod")
    try:
        posted = [*read_events(posted_log), hostile_event()]
        with httpx.Client(base_url=process.url, timeout=30) as client:
            for start in range(0, len(posted), 400):
                answer = client.post(
                    "/audit/prod",
                    content=event_list(posted[start : start + 400]),
                    headers={"content-type": "application/json"},
                )
                assert answer.status_code == 200, answer.text
        _wait_for_alerts(process.url)
        yield UIServer(process.url, store, read_events(ingested_log), posted, process)
    finally:
        process.stop()
