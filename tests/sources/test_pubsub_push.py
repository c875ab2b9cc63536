"""The Pub/Sub push endpoint, held to Google's push delivery format and its OIDC authentication.

In process (serve's ASGI app, no network) for the exchange and the refusals; against a real `kubetrail serve` on
loopback with real HTTP clients for `kill -9` mid-stream (every message answered 200 is in the store after the
restart, once); and the real Pub/Sub emulator pushing its own envelopes to serve (through a loopback hop that
adds the OIDC token, which the emulator does not sign), redelivering what was not acknowledged.
"""

from __future__ import annotations

import http.server
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
from tests.intake.shapes import log_entry
from tests.serve.helpers import AsgiClient, audit_event, audit_ids, start_serve
from tests.sources.servers import (
    TokenIssuer,
    emulator_environment,
    make_topic,
    publish_entries,
    pubsub_emulator,
    push_body,
)

pytest.importorskip("jwt", reason="the gcp extra (PyJWT) is not installed")

AUDIENCE = "https://kubetrail.example.com/pubsub"
ACCOUNT = "kubetrail-push@demo-project.iam.gserviceaccount.com"
ISSUER = TokenIssuer()


def entry(number: int, prefix: str, cluster: str = "gke-prod") -> dict[str, Any]:
    made = log_entry(audit_event(number, prefix=prefix))
    made["resource"]["labels"]["cluster_name"] = cluster
    return made


def headers(token: str | None = None) -> dict[str, str]:
    found = {"Content-Type": "application/json", "User-Agent": "APIs-Google"}
    if token is not None:
        found["Authorization"] = f"Bearer {token}"
    return found


def good() -> dict[str, str]:
    return headers(ISSUER.token(AUDIENCE, ACCOUNT))


def flags(folder: Path) -> dict[str, Any]:
    return {
        "store": str(folder / "store"),
        "ui": False,
        "pubsub-audience": (AUDIENCE,),
        "pubsub-jwks": str(ISSUER.write_jwks(folder / "jwks.json")),
        "pubsub-service-account": (ACCOUNT,),
    }


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServeApp, AsgiClient]]:
    app = ServeApp(build_config({}, flags(tmp_path)))
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


def test_a_push_is_acknowledged_after_it_is_stored(served: tuple[ServeApp, AsgiClient]) -> None:
    app, client = served
    pushed = entry(1, "push")
    response = client.post("/pubsub", content=push_body(pushed, "111"), headers=good())
    assert response.status_code == 200 and response.json() == {"messageId": "111"}
    assert stored(app) == {pushed["operation"]["id"]: "gke-prod"}
    named = entry(2, "push")
    assert client.post("/pubsub/staging", content=push_body(named, "112"), headers=good()).status_code == 200
    assert stored(app)[named["operation"]["id"]] == "staging"
    metrics = client.get("/metrics").text
    assert 'kubetrail_source_events_total{source="pubsub-push"} 2' in metrics
    assert 'kubetrail_receiver_requests_total{path="/pubsub",code="200"} 2' in metrics
    assert float(metrics.split('kubetrail_source_lag_seconds{source="pubsub-push"} ')[1].split()[0]) > 0


def test_a_redelivered_message_is_stored_once_and_other_messages_are_acknowledged(
    served: tuple[ServeApp, AsgiClient],
) -> None:
    app, client = served
    body = push_body(entry(3, "again"), "113")
    for _ in range(3):
        assert client.post("/pubsub", content=body, headers=good()).status_code == 200
    assert len(stored(app)) == 1 and app.pubsub_push is not None and app.pubsub_push.stats.duplicates == 2
    other = {"logName": "projects/p/logs/syslog", "textPayload": "hello", "timestamp": "2026-03-19T10:00:00Z"}
    assert client.post("/pubsub", content=push_body(other, "114"), headers=good()).status_code == 200
    unwrapped = json.dumps(entry(4, "raw")).encode()
    assert client.post("/pubsub", content=unwrapped, headers=good()).status_code == 200
    garbage = b'{"message": {"data": "bm90IGpzb24=", "messageId": "115"}}'
    assert client.post("/pubsub", content=garbage, headers=good()).status_code == 200
    assert len(stored(app)) == 2
    assert app.store is not None and app.store.dead_letters.count == 1
    assert app.pubsub_push.stats.skipped == 1 and app.pubsub_push.stats.rejected == 1


@pytest.mark.parametrize(
    ("token", "status"),
    [
        (None, 401),
        (ISSUER.token("https://kubetrail.example.com/other", ACCOUNT), 401),
        (ISSUER.token(AUDIENCE, ACCOUNT, exp=int(time.time()) - 3600), 401),
        (TokenIssuer(kid=ISSUER.kid).token(AUDIENCE, ACCOUNT), 401),
        (ISSUER.token(AUDIENCE, "someone@demo-project.iam.gserviceaccount.com"), 403),
    ],
)
def test_a_refused_token_writes_nothing(served: tuple[ServeApp, AsgiClient], token: str | None, status: int) -> None:
    app, client = served
    response = client.post("/pubsub/prod", content=push_body(entry(5, "refused"), "116"), headers=headers(token))
    assert response.status_code == status and response.json()["error"]
    assert token is None or token not in response.text
    assert stored(app) == {}
    assert app.store is not None and app.store.dead_letters.count == 0


def test_bodies_that_are_no_push_request_and_other_methods(tmp_path: Path, served: tuple[ServeApp, AsgiClient]) -> None:
    _, client = served
    for body in (b"not json", b'{"message": {"data": "!!"}}', b"[1]"):
        assert client.post("/pubsub", content=body, headers=good()).status_code == 400
    assert client.post("/pubsub/bad%2Fname", content=b"{}", headers=good()).status_code == 400
    assert client.get("/pubsub").status_code == 405
    app = ServeApp(build_config({}, {"store": str(tmp_path / "plain"), "ui": False}))
    app.open()
    plain = AsgiClient(app.asgi)
    try:
        assert plain.post("/pubsub", content=push_body(entry(6, "x"), "1"), headers=good()).status_code == 404
    finally:
        plain.close()
        app.close()


# ----- a real serve, real clients, kill -9 ------------------------------------------------------------------------


def serve_arguments(folder: Path) -> tuple[str, ...]:
    return (
        "--store", str(folder / "store"), "--listen", "127.0.0.1:0", "--no-ui", "--log-level", "warning",
        "--pubsub-audience", AUDIENCE, "--pubsub-jwks", str(ISSUER.write_jwks(folder / "jwks.json")),
        "--pubsub-service-account", ACCOUNT,
    )  # fmt: skip


class Pusher:
    """Client threads pushing distinct messages until stopped; remembers which were answered 200."""

    def __init__(self, url: str, threads: int = 3) -> None:
        self.url = url
        self.acknowledged: dict[str, str] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run) for _ in range(threads)]

    def run(self) -> None:
        token = ISSUER.token(AUDIENCE, ACCOUNT)
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                message_id = uuid.uuid4().hex
                pushed = entry(0, f"k9-{message_id}")
                try:
                    response = client.post("/pubsub", content=push_body(pushed, message_id), headers=headers(token))
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    with self.lock:
                        self.acknowledged[message_id] = pushed["operation"]["id"]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def test_kill_9_mid_stream_loses_no_acknowledged_message(tmp_path: Path) -> None:
    arguments = serve_arguments(tmp_path)
    server = start_serve(*arguments)
    deadline = time.monotonic() + 30  # the sources are printed just after the URL line
    while not any("/pubsub/<cluster>" in line for line in server.output) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any("POST deliveries to" in line and "/pubsub/<cluster>" in line for line in server.output)
    forged = TokenIssuer(kid=ISSUER.kid).token(AUDIENCE, ACCOUNT)
    body = push_body(entry(0, "forged"), "forged")
    assert httpx.post(f"{server.url}/pubsub", content=body, headers=headers(forged)).status_code == 401
    pusher = Pusher(server.url)
    pusher.start()
    deadline = time.monotonic() + 60
    while len(pusher.acknowledged) < 100 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=30)
    pusher.join()
    assert len(pusher.acknowledged) >= 100

    restarted = start_serve(*arguments)
    assert restarted.stop() == 0, "".join(restarted.output)
    ids = audit_ids(tmp_path / "store")
    assert len(ids) == len(set(ids)), "an event is stored twice"
    missing = [message for message, audit_id in pusher.acknowledged.items() if audit_id not in set(ids)]
    assert not missing, f"{len(missing)} messages answered 200 are not in the store"
    assert not any(audit_id.startswith("forged-") for audit_id in ids)
    Store.open(tmp_path / "store", read_only=True).close()


# ----- the Pub/Sub emulator pushing ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("google.cloud.pubsub_v1", reason="the gcp extra (google-cloud-pubsub) is not installed")
    with pubsub_emulator(tmp_path_factory.mktemp("emulator")) as host, emulator_environment(host):
        yield host


class TokenHop(http.server.ThreadingHTTPServer):
    """A loopback hop between the emulator and serve: adds the OIDC token Google would sign (the emulator signs
    none), refuses each message's first delivery with 503 (so the emulator must redeliver), and keeps the
    envelopes it saw."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.envelopes: list[dict[str, Any]] = []
        self.answers: list[int] = []
        self.seen: set[str] = set()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Hop)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Hop(http.server.BaseHTTPRequestHandler):
    server: TokenHop

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        envelope = json.loads(body)
        message_id = envelope["message"]["messageId"]
        with self.server.lock:
            self.server.envelopes.append(envelope)
            first = message_id not in self.server.seen
            self.server.seen.add(message_id)
        if first:
            status = 503
        else:
            response = httpx.post(
                self.server.target + self.path,
                content=body,
                headers={"Content-Type": self.headers.get("Content-Type", ""), **good()},
                timeout=30,
            )
            status = response.status_code
        with self.server.lock:
            self.server.answers.append(status)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


def test_the_emulator_pushes_its_envelopes_and_redelivers_until_acknowledged(emulator: str, tmp_path: Path) -> None:
    server = start_serve(*serve_arguments(tmp_path))
    hop = TokenHop(server.url)
    thread = threading.Thread(target=hop.serve_forever, daemon=True)
    thread.start()
    try:
        publisher, topic, _ = make_topic(push_endpoint=f"{hop.url}/pubsub")
        entries = [entry(number, "emu") for number in range(20)]
        publish_entries(publisher, topic, entries)
        deadline = time.monotonic() + 90
        while hop.answers.count(200) < len(entries) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert hop.answers.count(200) == len(entries), hop.answers
        assert hop.answers.count(503) == len(entries)
        envelope = hop.envelopes[0]
        assert set(envelope) >= {"message", "subscription"} and envelope["subscription"].endswith("-kubetrail")
        assert {"data", "messageId", "publishTime", "attributes"} <= set(envelope["message"])
    finally:
        hop.shutdown()
        assert server.stop() == 0, "".join(server.output)
    ids = audit_ids(tmp_path / "store")
    assert sorted(ids) == sorted(item["operation"]["id"] for item in entries)
