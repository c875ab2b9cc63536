"""`kill -9` of a real `kubetrail serve` during sustained POSTs, then a restart on the same store:
every event that was answered 200 is stored exactly once (compared by auditID through DuckDB)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from tests.serve.helpers import audit_event, audit_ids, event_list, start_serve

JSON = {"Content-Type": "application/json"}
BATCH = 100


class Sender:
    """Client threads posting distinct batches until told to stop; remembers what was acknowledged."""

    def __init__(self, url: str, threads: int = 3) -> None:
        self.url = url
        self.acknowledged: list[str] = []
        self.unanswered: list[list[str]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.posts = 0
        self.threads = [threading.Thread(target=self.run, args=(index, threads)) for index in range(threads)]

    def run(self, index: int, stride: int) -> None:
        batch = index
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                events = [audit_event(batch * BATCH + number, prefix="crash") for number in range(BATCH)]
                ids = [event["auditID"] for event in events]
                try:
                    response = client.post("/audit/prod", content=event_list(events), headers=JSON)
                except httpx.HTTPError:
                    with self.lock:
                        self.unanswered.append(ids)
                    return
                with self.lock:
                    self.posts += 1
                    if response.status_code == 200:
                        self.acknowledged.extend(ids)
                    else:
                        self.unanswered.append(ids)
                batch += stride

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def test_kill_9_under_load_then_restart_keeps_every_acknowledged_event_once(tmp_path: Path) -> None:
    store = tmp_path / "store"
    server = start_serve("--store", str(store), "--listen", "127.0.0.1:0", "--log-level", "warning")
    sender = Sender(server.url)
    sender.start()
    deadline = time.monotonic() + 60
    while sender.posts < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=30)
    sender.join()
    assert len(sender.acknowledged) >= 30 * BATCH

    restarted = start_serve("--store", str(store), "--listen", "127.0.0.1:0", "--log-level", "warning")
    with httpx.Client(base_url=restarted.url, timeout=30) as client:
        for ids in sender.unanswered:
            numbers = [int(audit_id.split("-")[1]) for audit_id in ids]
            events = [audit_event(number, prefix="crash") for number in numbers]
            assert client.post("/audit/prod", content=event_list(events), headers=JSON).status_code == 200
    assert restarted.stop() == 0, "".join(restarted.output)

    stored = audit_ids(store)
    assert len(stored) == len(set(stored)), "an event is stored twice"
    missing = set(sender.acknowledged) - set(stored)
    assert not missing, f"{len(missing)} acknowledged events were lost"
    resent = {audit_id for ids in sender.unanswered for audit_id in ids}
    assert set(stored) == set(sender.acknowledged) | resent
