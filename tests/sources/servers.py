"""Real local servers for the GKE and AKS source tests, started by the tests on free loopback ports:

- Google's Pub/Sub emulator (the gcloud SDK's `pubsub-emulator` component, a Java server speaking the real
  gRPC and REST APIs);
- Azurite's blob service (Microsoft's Azure Storage emulator, the npm package `azurite`, installed by .ci/run
  or here on first use into a cache folder).

Each is skipped with the reason when it cannot be had on this machine. Also: Google-style OIDC tokens signed by a
key the tests make (with its JWKS), Pub/Sub push envelopes, AKS diagnostic records, and Event Hubs events as the
SDK decodes them.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.serve.helpers import free_port

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kubetrail-test"
AZURITE_DIR = CACHE / "azurite"
AZURITE_VERSION = "3"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's well-known development account key (public, in Microsoft's documentation)."""
PROJECT = "demo-project"


def _wait_port(port: int, process: subprocess.Popen[bytes], what: str, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"{what} did not start listening: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the server we started (its own process group: the start script and the JVM or node under it)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)


# ----- the Pub/Sub emulator -----------------------------------------------------------------------------------


def emulator_script() -> Path | None:
    """The emulator's start script inside the gcloud SDK, when the SDK, the component and java are here."""
    gcloud = shutil.which("gcloud")
    if gcloud is None or shutil.which("java") is None:
        return None
    root = Path(os.path.realpath(gcloud)).parents[1]
    script = root / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
    return script if script.is_file() else None


@contextmanager
def pubsub_emulator(folder: Path) -> Iterator[str]:
    """The Pub/Sub emulator on a free loopback port; yields its `HOST:PORT` (PUBSUB_EMULATOR_HOST)."""
    script = emulator_script()
    if script is None:
        pytest.skip(
            "the Pub/Sub emulator is not installed: it needs the gcloud SDK with the pubsub-emulator component "
            "(Debian package google-cloud-cli-pubsub-emulator from Google's repository) and java"
        )
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "pubsub-emulator.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(script), "--host=127.0.0.1", f"--port={port}"],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_port(port, process, "the Pub/Sub emulator", log)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(process)


@contextmanager
def emulator_environment(host: str) -> Iterator[None]:
    """PUBSUB_EMULATOR_HOST for the SDK (which then uses no credentials at all)."""
    saved = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = host
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        else:
            os.environ["PUBSUB_EMULATOR_HOST"] = saved


def make_topic(name: str | None = None, *, push_endpoint: str | None = None) -> tuple[Any, str, str]:
    """A topic and a subscription on the emulator: (publisher, topic path, subscription path)."""
    from google.cloud import pubsub_v1

    unique = name or f"audit-{uuid.uuid4().hex[:10]}"
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(PROJECT, unique)
    subscription = subscriber.subscription_path(PROJECT, f"{unique}-kubetrail")
    publisher.create_topic(request={"name": topic})
    request: dict[str, Any] = {"name": subscription, "topic": topic, "ack_deadline_seconds": 10}
    if push_endpoint is not None:
        request["push_config"] = {"push_endpoint": push_endpoint}
    subscriber.create_subscription(request=request)
    subscriber.close()
    return publisher, topic, subscription


def publish_entries(publisher: Any, topic: str, entries: list[dict[str, Any]]) -> None:
    """Publish LogEntries as a Cloud Logging sink does: the entry's JSON as the data, one message each."""
    futures = [
        publisher.publish(topic, json.dumps(entry).encode(), **{"logging.googleapis.com/timestamp": entry["timestamp"]})
        for entry in entries
    ]
    for future in futures:
        future.result(timeout=30)


# ----- OIDC tokens as Google signs them for push subscriptions ------------------------------------------------


class TokenIssuer:
    """An RSA key of the tests' own, its JWKS, and Google-shaped OIDC tokens signed with it."""

    def __init__(self, kid: str | None = None) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.kid = kid or uuid.uuid4().hex
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        import jwt

        document = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**document, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def write_jwks(self, path: Path, *others: TokenIssuer) -> Path:
        keys = [key for issuer in (self, *others) for key in issuer.jwks()["keys"]]
        path.write_text(json.dumps({"keys": keys}))
        return path

    def token(self, audience: str, email: str = "", *, algorithm: str = "RS256", **overrides: Any) -> str:
        """A token for `audience` naming `email`; a claim set to None is left out."""
        import jwt

        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": audience,
            "azp": "112233445566778899000",
            "email": email,
            "email_verified": True,
            "exp": now + 3600,
            "iat": now,
            "iss": "https://accounts.google.com",
            "sub": "112233445566778899000",
            **overrides,
        }
        payload = {key: value for key, value in claims.items() if value is not None}
        key: Any = self.key if algorithm == "RS256" else "a shared secret that is at least 32 bytes long"
        return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": self.kid})


def push_body(entry: dict[str, Any], message_id: str, subscription: str = "") -> bytes:
    """A push request's body as Pub/Sub sends it (both spellings of the fields, as the service does)."""
    published = "2026-03-19T10:00:00.123Z"
    message = {
        "attributes": {"logging.googleapis.com/timestamp": entry.get("timestamp", "")},
        "data": base64.b64encode(json.dumps(entry).encode()).decode(),
        "messageId": message_id,
        "message_id": message_id,
        "publishTime": published,
        "publish_time": published,
    }
    name = subscription or f"projects/{PROJECT}/subscriptions/kubetrail-gke-prod"
    return json.dumps({"message": message, "subscription": name}).encode()


# ----- Azurite --------------------------------------------------------------------------------------------------


def azurite_binary() -> Path | None:
    """azurite-blob: from PATH, from the cache folder, or installed there now with npm (once per machine)."""
    found = shutil.which("azurite-blob")
    if found:
        return Path(found)
    binary = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
    if binary.exists():
        return binary
    if shutil.which("npm") is None or shutil.which("node") is None:
        return None
    AZURITE_DIR.mkdir(parents=True, exist_ok=True)
    with (CACHE / "azurite.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            subprocess.run(
                [
                    "npm",
                    "install",
                    "--prefix",
                    str(AZURITE_DIR),
                    "--no-audit",
                    "--no-fund",
                    f"azurite@{AZURITE_VERSION}",
                ],
                check=False,
                capture_output=True,
                timeout=600,
            )
    return binary if binary.exists() else None


@contextmanager
def azurite(folder: Path) -> Iterator[str]:
    """Azurite's blob service on a free loopback port; yields its connection string."""
    binary = azurite_binary()
    if binary is None:
        pytest.skip("Azurite is not installed and npm could not install it (npm install azurite)")
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "azurite.log"
    data = folder / "azurite-data"
    data.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(data),
             "--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry"],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        _wait_port(port, process, "Azurite", log)
        yield (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        )
    finally:
        _stop(process)


def aks_blob_name(cluster: str, hour: str, subscription: str = "00000000-0000-0000-0000-000000000000") -> str:
    """The archive's blob for a cluster and hour (`2026-03-19T10`), as diagnostic settings name it."""
    day, clock = hour.split("T")
    year, month, date = day.split("-")
    resource = (
        f"/SUBSCRIPTIONS/{subscription}/RESOURCEGROUPS/RG-AUDIT/PROVIDERS/MICROSOFT.CONTAINERSERVICE/"
        f"MANAGEDCLUSTERS/{cluster.upper()}"
    )
    return f"resourceId={resource}/y={year}/m={month}/d={date}/h={clock}/m=00/PT1H.json"


def aks_lines(events: list[dict[str, Any]], cluster: str, *, category: str = "kube-audit") -> bytes:
    """Records as the archive's lines: one JSON record per line, each ending with a newline."""
    from tests.intake.shapes import aks_record

    lines = []
    for event in events:
        record = aks_record(event, category=category)
        record["resourceId"] = record["resourceId"].rsplit("/", 1)[0] + "/" + cluster.upper()
        lines.append(json.dumps(record))
    return "".join(line + "\n" for line in lines).encode()


# ----- Event Hubs (no server: the SDK's own encoder and decoder) ------------------------------------------------


def wire_event(body: bytes, offset: int, sequence: int, enqueued_ms: int) -> Any:
    """An EventData as the SDK makes one from a received transfer: the message built by the SDK's sending path,
    with the annotations Event Hubs adds, AMQP-encoded, then decoded by the SDK's receiving path."""
    from azure.eventhub import EventData
    from azure.eventhub._pyamqp._decode import decode_payload
    from azure.eventhub._pyamqp._encode import encode_payload
    from azure.eventhub._pyamqp.types import TYPE as KIND
    from azure.eventhub._pyamqp.types import VALUE, AMQPTypes
    from azure.eventhub._transport._pyamqp_transport import PyamqpTransport

    annotations = {
        b"x-opt-offset": str(offset),
        b"x-opt-sequence-number": {KIND: AMQPTypes.long, VALUE: sequence},
        b"x-opt-enqueued-time": {KIND: AMQPTypes.timestamp, VALUE: enqueued_ms},
    }
    outgoing = PyamqpTransport.to_outgoing_amqp_message(EventData(body).raw_amqp_message)
    payload = bytearray()
    encode_payload(payload, outgoing._replace(message_annotations=annotations))
    return EventData._from_message(decode_payload(memoryview(bytes(payload))))
