"""The Firehose push endpoint, held to Amazon's HTTP endpoint delivery request and response specifications.

In process (serve's ASGI app, no network) for the exchange and the refusals; against a real `kubetrail serve`
on loopback with real HTTP clients for `kill -9` mid-stream: every requestId answered 200 is in the store after
the restart.
"""

from __future__ import annotations

import gzip
import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubetrail.serve.app import ServeApp
from kubetrail.serve.config import build_config
from kubetrail.store import Store
from tests.serve.helpers import AsgiClient, audit_event, audit_ids, start_serve
from tests.sources.helpers import data_message, firehose_body, firehose_headers, write_keys

KEY = "k3y-" + "f" * 60
PROD_ONLY = "only-prod-" + "a" * 40


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServeApp, AsgiClient]]:
    keys = write_keys(tmp_path / "firehose-keys", f"{KEY}", f"{PROD_ONLY},prod")
    config = build_config({}, {"store": str(tmp_path / "store"), "ui": False, "firehose-access-key-file": str(keys)})
    app = ServeApp(config)
    app.open()
    client = AsgiClient(app.asgi)
    try:
        yield app, client
    finally:
        client.close()
        app.close()


def stored(app: ServeApp) -> dict[str, str]:
    """auditID → cluster of every stored event (through the open store)."""
    assert app.store is not None
    rows = app.store.query_connection().execute("select audit_id, cluster from events").fetchall()
    return {str(audit_id): str(cluster) for audit_id, cluster in rows}


def events(prefix: str, count: int) -> list[dict[str, Any]]:
    return [audit_event(number, prefix=prefix) for number in range(count)]


def test_a_delivery_is_answered_as_firehose_expects_after_it_is_stored(served: tuple[ServeApp, AsgiClient]) -> None:
    app, client = served
    batch = events("fh", 25)
    body = firehose_body("req-1", [data_message("/aws/eks/prod/cluster", "kube-apiserver-audit-1", batch)])
    before = int(time.time() * 1000)
    response = client.post("/firehose/prod", content=body, headers=firehose_headers("req-1", KEY))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert set(answer) == {"requestId", "timestamp"} and answer["requestId"] == "req-1"
    assert before <= answer["timestamp"] <= int(time.time() * 1000)
    assert stored(app) == {str(event["auditID"]): "prod" for event in batch}
    metrics = client.get("/metrics").text
    assert 'kubetrail_source_events_total{source="firehose"} 25' in metrics
    assert 'kubetrail_receiver_requests_total{path="/firehose",code="200"} 1' in metrics


def test_gzip_bodies_extracted_messages_and_the_log_groups_cluster(served: tuple[ServeApp, AsgiClient]) -> None:
    app, client = served
    staging, dev = events("st", 5), events("dv", 4)
    body = firehose_body(
        "req-2",
        [
            data_message("/aws/eks/staging/cluster", "kube-apiserver-audit-1", staging),
            data_message("/aws/eks/dev/cluster", "kube-apiserver-audit-1", dev),
        ],
    )
    headers = firehose_headers("req-2", KEY, **{"Content-Encoding": "gzip"})
    assert client.post("/firehose", content=gzip.compress(body), headers=headers).status_code == 200
    extracted = events("ex", 3)
    body = firehose_body("req-3", [data_message("/aws/eks/x/cluster", "s", extracted)], extracted=True)
    assert client.post("/firehose/prod", content=body, headers=firehose_headers("req-3", KEY)).status_code == 200
    clusters = stored(app)
    assert {clusters[str(event["auditID"])] for event in staging} == {"staging"}
    assert {clusters[str(event["auditID"])] for event in dev} == {"dev"}
    assert {clusters[str(event["auditID"])] for event in extracted} == {"prod"}


def test_a_retried_request_is_stored_once(served: tuple[ServeApp, AsgiClient]) -> None:
    app, client = served
    body = firehose_body("req-r", [data_message("/aws/eks/prod/cluster", "s", events("re", 10))])
    for _ in range(3):
        assert client.post("/firehose/prod", content=body, headers=firehose_headers("req-r", KEY)).status_code == 200
    assert len(stored(app)) == 10
    assert app.firehose is not None and app.firehose.stats.duplicates == 20


def test_a_control_message_is_acknowledged_and_stores_nothing(served: tuple[ServeApp, AsgiClient]) -> None:
    app, client = served
    control = {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [{"id": "", "timestamp": 1, "message": "CWL CONTROL MESSAGE"}],
    }
    body = firehose_body("req-c", [control])
    response = client.post("/firehose/prod", content=body, headers=firehose_headers("req-c", KEY))
    assert response.status_code == 200 and stored(app) == {}


@pytest.mark.parametrize(
    ("key", "path", "status"),
    [
        (None, "/firehose/prod", 401),
        ("wrong", "/firehose/prod", 403),
        (KEY[:-1], "/firehose/prod", 403),
        (PROD_ONLY, "/firehose/staging", 403),
    ],
)
def test_a_missing_or_wrong_access_key_is_refused_and_nothing_is_written(
    served: tuple[ServeApp, AsgiClient], key: str | None, path: str, status: int
) -> None:
    app, client = served
    body = firehose_body("req-k", [data_message("/aws/eks/prod/cluster", "s", events("k", 3))])
    response = client.post(path, content=body, headers=firehose_headers("req-k", key))
    assert response.status_code == status
    answer = response.json()
    assert answer["requestId"] == "req-k" and answer["errorMessage"] and isinstance(answer["timestamp"], int)
    assert KEY not in response.text
    assert stored(app) == {}
    assert app.store is not None and app.store.dead_letters.count == 0


def test_a_key_bound_to_a_cluster_stamps_it(served: tuple[ServeApp, AsgiClient]) -> None:
    app, client = served
    batch = events("bound", 2)
    body = firehose_body("req-b", [data_message("/aws/eks/other/cluster", "s", batch)])
    assert client.post("/firehose", content=body, headers=firehose_headers("req-b", PROD_ONLY)).status_code == 200
    assert set(stored(app).values()) == {"prod"}


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"not json", {}, 400),
        (b'{"records": []}', {}, 400),
        (firehose_body("other-id", []), {}, 400),
        (firehose_body("req-x", []), {"Content-Type": "text/plain"}, 415),
        (gzip.compress(b"{" * 10, mtime=0), {"Content-Encoding": "gzip"}, 400),
    ],
)
def test_malformed_requests_are_refused_with_firehoses_error_shape(
    served: tuple[ServeApp, AsgiClient], body: bytes, headers: dict[str, str], status: int
) -> None:
    _, client = served
    response = client.post("/firehose/prod", content=body, headers={**firehose_headers("req-x", KEY), **headers})
    assert response.status_code == status
    assert response.json()["requestId"] == "req-x" and response.json()["errorMessage"]


def test_records_that_inflate_past_the_body_limit_are_refused_whole(tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys", KEY)
    config = build_config(
        {},
        {
            "store": str(tmp_path / "store"),
            "ui": False,
            "firehose-access-key-file": str(keys),
            "max-body-size": "64KiB",
            "max-event-size": "16KiB",
        },
    )
    app = ServeApp(config)
    app.open()
    client = AsgiClient(app.asgi)
    try:
        bomb = gzip.compress(b" " * (1 << 20))
        import base64

        record = {"data": base64.b64encode(bomb).decode()}
        body = json.dumps({"requestId": "req-z", "timestamp": 1, "records": [record]}).encode()
        response = client.post("/firehose/prod", content=body, headers=firehose_headers("req-z", KEY))
        assert response.status_code == 413 and response.json()["requestId"] == "req-z"
    finally:
        client.close()
        app.close()


def test_no_route_without_a_key_file_and_only_post(tmp_path: Path, served: tuple[ServeApp, AsgiClient]) -> None:
    _, client = served
    assert client.get("/firehose/prod").status_code == 405
    config = build_config({}, {"store": str(tmp_path / "plain"), "ui": False})
    app = ServeApp(config)
    app.open()
    plain = AsgiClient(app.asgi)
    try:
        body = firehose_body("r", [])
        assert plain.post("/firehose/prod", content=body, headers=firehose_headers("r", KEY)).status_code == 404
    finally:
        plain.close()
        app.close()


# ----- a real serve, real clients, kill -9 ------------------------------------------------------------------------


class FirehoseSender:
    """Client threads sending distinct Firehose requests until stopped; remembers which were answered 200."""

    def __init__(self, url: str, threads: int = 3) -> None:
        self.url = url
        self.acknowledged: dict[str, list[str]] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.sent = 0
        self.threads = [threading.Thread(target=self.run, args=(index,)) for index in range(threads)]

    def run(self, index: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                request_id = str(uuid.uuid4())
                batch = events(f"k9-{request_id[:8]}", 50)
                body = firehose_body(
                    request_id, [data_message("/aws/eks/prod/cluster", "kube-apiserver-audit-1", batch)]
                )
                try:
                    response = client.post("/firehose/prod", content=body, headers=firehose_headers(request_id, KEY))
                except httpx.HTTPError:
                    return
                with self.lock:
                    self.sent += 1
                    if response.status_code == 200 and response.json().get("requestId") == request_id:
                        self.acknowledged[request_id] = [str(event["auditID"]) for event in batch]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def test_kill_9_mid_stream_loses_no_acknowledged_request(tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys", KEY)
    store = tmp_path / "store"
    arguments = (
        "--store",
        str(store),
        "--listen",
        "127.0.0.1:0",
        "--no-ui",
        "--log-level",
        "warning",
        "--firehose-access-key-file",
        str(keys),
    )
    server = start_serve(*arguments)
    body = firehose_body("wrong", [data_message("/aws/eks/prod/cluster", "s", events("wrong", 5))])
    refused = httpx.post(f"{server.url}/firehose/prod", content=body, headers=firehose_headers("wrong", "nope"))
    assert refused.status_code == 403
    sender = FirehoseSender(server.url)
    sender.start()
    deadline = time.monotonic() + 60
    while len(sender.acknowledged) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=30)
    sender.join()
    assert len(sender.acknowledged) >= 20

    restarted = start_serve(*arguments)
    assert restarted.stop() == 0, "".join(restarted.output)
    ids = audit_ids(store)
    assert len(ids) == len(set(ids)), "an event is stored twice"
    missing = [request for request, audit in sender.acknowledged.items() if not set(audit) <= set(ids)]
    assert not missing, f"{len(missing)} requests answered 200 are not (wholly) in the store"
    assert not any(audit_id.startswith("wrong-") for audit_id in ids)
    Store.open(store, read_only=True).close()
