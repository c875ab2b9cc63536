"""serve's detection process: off the receiver's interpreter, fed only durable batches, late but never lost.

A stopped child (SIGSTOP) stands for detection that has fallen behind: the backlog fills, the receiver answers
503 with Retry-After (so the apiserver retries), nothing is dropped, and once the child runs again every
acknowledged event is detected.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from kubetrail.model import decode_event
from kubetrail.pipeline.detection_process import DetectionProcess, DetectionSettings
from kubetrail.serve.config import build_config
from kubetrail.serve.server import BackgroundServer
from kubetrail.store import Durable, NotDurableError, Store, StoreOptions
from tests.serve.helpers import audit_event, event_list
from tests.serve.test_detection import RULES, alert_rows, exec_event

HEADERS = {"content-type": "application/json"}


def _durable(numbers: range) -> Durable:
    raws = [json.dumps(exec_event(number)).encode() for number in numbers]
    return Durable("prod", [decode_event(raw) for raw in raws], list[bytes | None](raws))


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, name
    return float(found.group(1))


def test_a_full_backlog_makes_other_doors_wait_and_nothing_is_dropped(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    detection = DetectionProcess(DetectionSettings((str(tmp_path / "rules.yaml"),), str(tmp_path)), queue_events=10)
    child = detection._process.pid
    assert child is not None
    os.kill(child, signal.SIGSTOP)
    try:
        detection.submit(_durable(range(0, 10)))
        assert detection.full and detection.backlog == 10
        # a tailer's thread waits for room ...
        waiting = threading.Thread(target=detection.submit, args=(_durable(range(10, 15)),))
        waiting.start()
        waiting.join(0.3)
        assert waiting.is_alive() and detection.backlog == 10

        # ... while the event loop is never blocked: the receiver refuses new batches instead (see below)
        async def on_loop() -> None:
            detection.submit(_durable(range(15, 20)))

        asyncio.run(on_loop())
        assert detection.backlog == 15
        assert detection.lag_seconds() > 0
    finally:
        os.kill(child, signal.SIGCONT)
    waiting.join(30)
    assert not waiting.is_alive()
    assert detection.drain(30)
    detection.close()
    assert (detection.stats.events, detection.stats.alerts, detection.stats.dropped_events) == (20, 20, 0)
    assert detection.backlog == 0 and detection.lag_seconds() == 0.0
    stored = [
        json.loads(line) for path in (tmp_path / "alerts").glob("*.jsonl") for line in path.read_text().splitlines()
    ]
    assert sorted(alert["audit_id"] for alert in stored) == sorted(exec_event(n)["auditID"] for n in range(20))


def test_serve_answers_503_while_detection_is_behind_and_detects_every_acknowledged_event(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    flags = {"store": str(tmp_path / "store"), "listen": "127.0.0.1:0", "rules": [str(tmp_path / "rules.yaml")]}
    server = BackgroundServer(build_config({}, flags))
    url = server.start()
    try:
        assert server.app is not None and server.app.detection is not None
        detection = server.app.detection
        detection.queue_events = 3
        child = detection._process.pid
        assert child is not None
        os.kill(child, signal.SIGSTOP)
        try:
            first = [exec_event(1), exec_event(2), exec_event(3)]
            assert httpx.post(f"{url}/audit/prod", content=event_list(first), headers=HEADERS).status_code == 200
            second = [exec_event(4), audit_event(5)]
            refused = httpx.post(f"{url}/audit/prod", content=event_list(second), headers=HEADERS)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            assert "detection is behind" in refused.text
            metrics = httpx.get(f"{url}/metrics").text
            assert _metric(metrics, "kubetrail_detection_backlog_events") == 3
            assert _metric(metrics, "kubetrail_detection_refused_batches_total") == 1
            assert _metric(metrics, "kubetrail_detection_lag_seconds") > 0
        finally:
            os.kill(child, signal.SIGCONT)
        assert detection.drain(30)
        # the sender's retry is taken once detection has caught up
        assert httpx.post(f"{url}/audit/prod", content=event_list(second), headers=HEADERS).status_code == 200
        assert detection.drain(30)
        metrics = httpx.get(f"{url}/metrics").text
        assert _metric(metrics, "kubetrail_detection_events_total") == 5
        assert _metric(metrics, "kubetrail_detection_dropped_events_total") == 0
    finally:
        server.stop()
    assert [row[4] for row in alert_rows(tmp_path / "store")] == sorted(exec_event(n)["auditID"] for n in range(1, 5))


def test_a_dead_detection_process_makes_serve_unready_and_its_losses_counted(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    flags = {"store": str(tmp_path / "store"), "listen": "127.0.0.1:0", "rules": [str(tmp_path / "rules.yaml")]}
    server = BackgroundServer(build_config({}, flags))
    url = server.start()
    try:
        assert server.app is not None and server.app.detection is not None
        assert httpx.get(f"{url}/readyz").status_code == 200
        child = server.app.detection._process.pid
        assert child is not None
        os.kill(child, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while server.app.detection.health() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503
        assert "detection process exited" in ready.text
        # events are still stored and acknowledged; that they go undetected is counted, never silent
        batch = event_list([exec_event(1), exec_event(2)])
        assert httpx.post(f"{url}/audit/prod", content=batch, headers=HEADERS).json()["accepted"] == 2
        metrics = httpx.get(f"{url}/metrics").text
        assert _metric(metrics, "kubetrail_detection_dropped_events_total") == 2
        assert _metric(metrics, "kubetrail_detection_backlog_events") == 0
    finally:
        server.stop()


def test_the_store_holds_every_door_while_admission_is_refused(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store", StoreOptions(background_seal=False))
    behind = ["detection is behind"]
    store.admit = lambda: behind[0] or None
    try:
        # an event-loop door (webhook, Firehose, Pub/Sub push) is refused at once: it answers 503
        with pytest.raises(NotDurableError, match="detection is behind; retry"):
            asyncio.run(store.append_async("prod", _durable(range(3)).events))
        # a thread door (tailer, pull source, ingest) waits, and is stored once admission is back
        done: list[int] = []
        waiting = threading.Thread(target=lambda: done.append(store.append("prod", _durable(range(3)).events).accepted))
        waiting.start()
        waiting.join(0.3)
        assert waiting.is_alive() and store.stats().tail_rows == 0
        behind[0] = ""
        waiting.join(30)
        assert done == [3]
    finally:
        store.close()
