"""Live cloud sources: events/s each one stores durably (WAL fsync before it checkpoints or answers).

- EKS pull: the `eks-cloudwatch` source reading two `kube-apiserver-audit-*` streams of moto's CloudWatch Logs
  (server mode, loopback) into a Store, page by page (GetLogEvents, 10,000 events a page at most), each page
  fsync'd then checkpointed. moto is a Python server, so this is a floor set by moto as much as by kubetrail;
  AWS itself serves pages of at most 1 MB, at ~25 GetLogEvents calls a second per account and region.
- EKS push: a real `kubetrail serve` with the Firehose route; client threads POST Firehose delivery requests
  (gzip'd CloudWatch deliveries of 500 events, as a subscription filter makes them) and count the events
  answered 200. Baseline in the same run: the webhook route with the same events as EventLists.
- The intake alone, one core: `decode_firehose` on those request bodies.
- GKE pull: the `gke-pubsub` source pulling Google's Pub/Sub emulator (a Java server on loopback) into a Store,
  1000 messages a pull, each pull fsync'd then acknowledged. One LogEntry per message, as a Cloud Logging sink
  publishes them.
- GKE push: a real `kubetrail serve` with the Pub/Sub push route; client threads POST push envelopes (one
  message each, as Pub/Sub pushes) with a signed OIDC token that serve verifies, and count the 200s.
- AKS archive: the `aks-storage` source reading hourly append blobs from Azurite (loopback) into a Store.
- AKS Event Hub: no Event Hubs server runs here, so this is the source's callback alone: EventData decoded by the
  SDK's own AMQP decoder (20 records a message, 300 messages a batch), stored and checkpointed.

The GKE and AKS rows need the gcloud SDK's Pub/Sub emulator and Azurite (see tests/sources/servers.py); a row
whose server is missing is left out and says why. Run alone: `python -m bench sources`
(KUBETRAIL_BENCH_SCALE=0.1 for a quick run). Needs the dev extras.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.bench_receiver import start_process
from bench.common import BenchResult
from bench.corpus import write_realistic_ndjson

NAME = "sources"
PULL_EVENTS = 40_000
PUSH_EVENTS = 100_000
GKE_EVENTS = 20_000
AKS_EVENTS = 40_000
RECORDS_PER_MESSAGE = 20
PER_DELIVERY = 500
CLIENTS = 4
REGION = "eu-west-1"
KEY = "bench-" + "k" * 58


def scaled(count: int) -> int:
    return max(2 * PER_DELIVERY, int(count * float(os.environ.get("KUBETRAIL_BENCH_SCALE", "1"))))


def messages(count: int) -> list[bytes]:
    return write_realistic_ndjson(None, max(count, 1000)).read_bytes().splitlines()[:count]


def _aws_env() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }


def pull(lines: list[bytes], folder: Path) -> tuple[float, int]:
    """Seconds for the EKS pull source to store every line put into moto, and the events it stored."""
    import boto3
    from moto.server import ThreadedMotoServer

    from kubetrail.pipeline import Pipeline
    from kubetrail.sources.checkpoint import SourceCheckpoints
    from kubetrail.sources.config import Entry
    from kubetrail.sources.eks import parse_spec
    from kubetrail.store import Store

    os.environ.update(_aws_env())
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        port = server.get_host_and_port()[1]
        url = f"http://127.0.0.1:{port}"
        client = boto3.client("logs", region_name=REGION, endpoint_url=url)
        group = "/aws/eks/bench/cluster"
        client.create_log_group(logGroupName=group)
        stamp = int(time.time() * 1000) - 3_600_000
        for index, stream in enumerate(("kube-apiserver-audit-1", "kube-apiserver-audit-2")):
            client.create_log_stream(logGroupName=group, logStreamName=stream)
            mine = lines[index::2]
            for start in range(0, len(mine), 5000):
                chunk = mine[start : start + 5000]
                events = [{"timestamp": stamp + start + n, "message": line.decode()} for n, line in enumerate(chunk)]
                client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        store = Store.open(folder / "pull-store")
        try:
            values = {"type": "eks-cloudwatch", "log-group": group, "region": REGION, "endpoint-url": url}
            spec = parse_spec(Entry(values, "bench", "sources[0]", "default"))
            source = spec.open(Pipeline(store), SourceCheckpoints(folder / "pull-store" / "checkpoints"))
            started = time.perf_counter()
            while source.poll_once():
                pass
            seconds = time.perf_counter() - started
            return seconds, source.stats.events
        finally:
            store.close(seal=False)
    finally:
        server.stop()


def firehose_bodies(lines: list[bytes]) -> list[tuple[str, bytes]]:
    bodies: list[tuple[str, bytes]] = []
    for start in range(0, len(lines), PER_DELIVERY):
        chunk = lines[start : start + PER_DELIVERY]
        delivery = {
            "messageType": "DATA_MESSAGE",
            "owner": "111122223333",
            "logGroup": "/aws/eks/bench/cluster",
            "logStream": "kube-apiserver-audit-1",
            "subscriptionFilters": ["kubetrail"],
            "logEvents": [{"id": str(n), "timestamp": n, "message": line.decode()} for n, line in enumerate(chunk)],
        }
        data = base64.b64encode(gzip.compress(json.dumps(delivery).encode())).decode()
        request_id = str(uuid.uuid4())
        body = json.dumps({"requestId": request_id, "timestamp": 1, "records": [{"data": data}]}).encode()
        bodies.append((request_id, body))
    return bodies


def webhook_bodies(lines: list[bytes]) -> list[tuple[str, bytes]]:
    head = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":['
    return [("", head + b",".join(lines[s : s + PER_DELIVERY]) + b"]}") for s in range(0, len(lines), PER_DELIVERY)]


def post_all(
    url: str, path: str, bodies: list[tuple[str, bytes]], firehose: bool, extra: dict[str, str] | None = None
) -> float:
    parts = urlsplit(url)
    failures = [0]

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
        for request_id, body in bodies[index::CLIENTS]:
            headers = {"Content-Type": "application/json", **(extra or {})}
            if firehose:
                headers.update(
                    {
                        "X-Amz-Firehose-Request-Id": request_id,
                        "X-Amz-Firehose-Access-Key": KEY,
                        "X-Amz-Firehose-Protocol-Version": "1.0",
                    }
                )
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            response.read()
            failures[0] += response.status != 200
        connection.close()

    threads = [threading.Thread(target=client, args=(index,)) for index in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures[0]:
        raise RuntimeError(f"{failures[0]} requests were not answered 200")
    return time.perf_counter() - started


def push(lines: list[bytes], folder: Path, firehose: bool) -> float:
    folder.mkdir(parents=True, exist_ok=True)
    keys = folder / "keys"
    keys.write_text(f"{KEY}\n")
    keys.chmod(0o600)
    store = folder / f"push-store-{'firehose' if firehose else 'webhook'}"
    command = [
        sys.executable,
        "-m",
        "kubetrail.cli.main",
        "serve",
        "--store",
        str(store),
        "--listen",
        "127.0.0.1:0",
        "--log-level",
        "warning",
        "--no-ui",
        "--firehose-access-key-file",
        str(keys),
    ]
    process, url = start_process(command)
    try:
        bodies = firehose_bodies(lines) if firehose else webhook_bodies(lines)
        path = "/firehose/bench" if firehose else "/audit/bench"
        post_all(url, path, bodies[: 2 * CLIENTS], firehose)  # warm-up (stored again: dedup absorbs it)
        return post_all(url, path, bodies, firehose)
    finally:
        process.terminate()
        process.wait(timeout=120)


def decode_rate(lines: list[bytes]) -> float:
    from kubetrail.intake.eks import decode_firehose

    bodies = [body for _, body in firehose_bodies(lines)]
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        count = sum(
            len(batch.events)
            for body in bodies
            for batch in decode_firehose(body, source="b", max_bytes=1 << 30).batches
        )
        best = min(best, time.perf_counter() - started)
    return count / best


def realistic_events(lines: list[bytes]) -> list[dict[str, Any]]:
    """The corpus events that name an object (GKE's entries always do)."""
    return [event for event in map(json.loads, lines) if event.get("objectRef", {}).get("resource")]


def gke_pull(lines: list[bytes], folder: Path) -> tuple[float, int]:
    """Seconds for the gke-pubsub source to store every entry published to the emulator, and the events."""
    from tests.intake.shapes import log_entry
    from tests.sources.servers import emulator_environment, make_topic, pubsub_emulator

    from kubetrail.pipeline import Pipeline
    from kubetrail.sources.checkpoint import SourceCheckpoints
    from kubetrail.sources.config import Entry
    from kubetrail.sources.gke import parse_spec
    from kubetrail.store import Store

    entries = [json.dumps(log_entry(event)).encode() for event in realistic_events(lines)]
    with pubsub_emulator(folder) as host, emulator_environment(host):
        publisher, topic, subscription = make_topic()
        for start in range(0, len(entries), 1000):
            futures = [publisher.publish(topic, data) for data in entries[start : start + 1000]]
            for future in futures:
                future.result(timeout=60)
        store = Store.open(folder / "gke-store")
        try:
            values = {"type": "gke-pubsub", "subscription": subscription, "max-messages": 1000, "wait": "2s"}
            source = parse_spec(Entry(values, "bench", "sources[0]", "default")).open(
                Pipeline(store), SourceCheckpoints(folder / "gke-store" / "checkpoints")
            )
            started = time.perf_counter()
            read = 0
            while read < len(entries):
                read += source.poll_once()
            return time.perf_counter() - started, source.stats.events
        finally:
            store.close(seal=False)


def gke_push(lines: list[bytes], folder: Path) -> tuple[float, int]:
    """Seconds for client threads to have every entry pushed to a real serve answered 200, and the entries."""
    from tests.intake.shapes import log_entry
    from tests.sources.servers import TokenIssuer, push_body

    issuer = TokenIssuer()
    audience = "https://kubetrail.example.com/pubsub"
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "kubetrail.cli.main", "serve", "--store", str(folder / "push-store"),
        "--listen", "127.0.0.1:0", "--log-level", "warning", "--no-ui", "--pubsub-audience", audience,
        "--pubsub-jwks", str(issuer.write_jwks(folder / "jwks.json")),
    ]  # fmt: skip
    bodies = [("", push_body(log_entry(event), str(index))) for index, event in enumerate(realistic_events(lines))]
    process, url = start_process(command)
    try:
        token = issuer.token(audience, "push@example.iam.gserviceaccount.com")
        post_all(url, "/pubsub/bench", bodies[: 2 * CLIENTS], False, {"Authorization": f"Bearer {token}"})
        return post_all(url, "/pubsub/bench", bodies, False, {"Authorization": f"Bearer {token}"}), len(bodies)
    finally:
        process.terminate()
        process.wait(timeout=120)


def aks_storage(lines: list[bytes], folder: Path) -> tuple[float, int]:
    """Seconds for the aks-storage source to store two hourly blobs' records from Azurite, and the events."""
    import datetime as dt

    from azure.storage.blob import BlobServiceClient
    from tests.sources.servers import aks_blob_name, aks_lines, azurite

    from kubetrail.pipeline import Pipeline
    from kubetrail.sources.aks_storage import parse_spec
    from kubetrail.sources.checkpoint import SourceCheckpoints
    from kubetrail.sources.config import Entry
    from kubetrail.store import Store

    events = [json.loads(line) for line in lines]
    with azurite(folder) as connection:
        os.environ["KUBETRAIL_BENCH_STORAGE"] = connection
        container = BlobServiceClient.from_connection_string(connection).get_container_client(
            "insights-logs-kube-audit"
        )
        container.create_container()
        now = dt.datetime.now(dt.UTC)
        for offset, half in ((-1, events[: len(events) // 2]), (0, events[len(events) // 2 :])):
            hour = (now + dt.timedelta(hours=offset)).strftime("%Y-%m-%dT%H")
            blob = container.get_blob_client(aks_blob_name("bench", hour))
            blob.create_append_blob()
            data = aks_lines(half, "bench")
            for start in range(0, len(data), 4 << 20):
                blob.append_block(data[start : start + (4 << 20)])
        store = Store.open(folder / "aks-store")
        try:
            values = {"type": "aks-storage", "connection-string-env": "KUBETRAIL_BENCH_STORAGE"}
            source = parse_spec(Entry(values, "bench", "sources[0]", "default")).open(
                Pipeline(store), SourceCheckpoints(folder / "aks-store" / "checkpoints")
            )
            started = time.perf_counter()
            while source.stats.events < len(events):
                source.poll_once()
            return time.perf_counter() - started, source.stats.events
        finally:
            store.close(seal=False)


def aks_eventhub(lines: list[bytes], folder: Path) -> tuple[float, int]:
    """Seconds for the aks-eventhub callback to store and checkpoint SDK-decoded EventData, and the events."""
    from azure.eventhub._eventprocessor.partition_context import PartitionContext
    from tests.intake.shapes import aks_record
    from tests.sources.servers import wire_event

    from kubetrail.pipeline import Pipeline
    from kubetrail.sources.aks_eventhub import AksEventHubSource, FileCheckpointStore, parse_spec
    from kubetrail.sources.checkpoint import SourceCheckpoints
    from kubetrail.sources.config import Entry
    from kubetrail.store import Store

    events = [json.loads(line) for line in lines]
    now = int(time.time() * 1000)
    wire = []
    for start in range(0, len(events), RECORDS_PER_MESSAGE):
        records = [aks_record(event) for event in events[start : start + RECORDS_PER_MESSAGE]]
        wire.append(wire_event(json.dumps({"records": records}).encode(), start * 1000, start, now))
    store = Store.open(folder / "eventhub-store")
    try:
        spec = parse_spec(Entry({"type": "aks-eventhub", "namespace": "n", "eventhub": "h"}, "bench", "s", "d"))
        checkpoints = FileCheckpointStore(SourceCheckpoints(folder / "eventhub-store" / "checkpoints"), key="bench")
        source = AksEventHubSource(spec, Pipeline(store), checkpoints, client=None)
        context = PartitionContext("n.servicebus.windows.net", "h", "$Default", "0", checkpoints)  # type: ignore[arg-type]
        started = time.perf_counter()
        for start in range(0, len(wire), 300):
            source.on_event_batch(context, wire[start : start + 300])
        return time.perf_counter() - started, source.stats.events
    finally:
        store.close(seal=False)


def _optional(name: str, function: Any, *arguments: Any) -> tuple[float, int] | str:
    """Run one GKE/AKS measurement, or say why it could not run (its server is not installed here)."""
    import pytest

    try:
        result: tuple[float, int] = function(*arguments)
        return result
    except pytest.skip.Exception as skipped:
        return f"{name}: not measured: {skipped.msg}"


def run() -> list[BenchResult]:
    pull_lines = messages(scaled(PULL_EVENTS))
    push_lines = messages(scaled(PUSH_EVENTS))
    folder = Path(tempfile.mkdtemp(prefix="kubetrail-bench-sources-"))
    saved = dict(os.environ)
    try:
        pull_seconds, pulled = pull(pull_lines, folder)
        firehose = min(push(push_lines, folder / "a", True), push(push_lines, folder / "b", True))
        webhook = min(push(push_lines, folder / "c", False), push(push_lines, folder / "d", False))
        decoded = decode_rate(push_lines)
        gke_lines = messages(scaled(GKE_EVENTS))
        aks_lines_ = messages(scaled(AKS_EVENTS))
        clouds = {
            "GKE pull (Pub/Sub emulator → store), events/s": _optional("gke pull", gke_pull, gke_lines, folder / "g"),
            "GKE push (Pub/Sub push + OIDC → serve), events/s": _optional(
                "gke push", gke_push, gke_lines, folder / "p"
            ),
            "AKS archive (Azurite hourly blobs → store), events/s": _optional(
                "aks storage", aks_storage, aks_lines_, folder / "s"
            ),
            "AKS Event Hub callback, no server (SDK-decoded EventData → store), events/s": _optional(
                "aks eventhub", aks_eventhub, aks_lines_, folder / "e"
            ),
        }
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(folder, ignore_errors=True)
    detail: dict[str, Any] = {
        "pull_events": pulled,
        "push_events": len(push_lines),
        "per_delivery": PER_DELIVERY,
        "clients": CLIENTS,
        "cpus": os.cpu_count(),
        "note": "every count is of events stored durably (WAL fsync) before the checkpoint or the 200",
    }
    results = [
        BenchResult(
            NAME, "EKS pull (moto CloudWatch Logs → store), events/s", pulled / pull_seconds, "events/s", detail=detail
        ),
        BenchResult(
            NAME, "EKS push (Firehose HTTP endpoint → serve), events/s", len(push_lines) / firehose, "events/s"
        ),
        BenchResult(
            NAME, "webhook, same events as EventLists (same run), events/s", len(push_lines) / webhook, "events/s"
        ),
        BenchResult(NAME, "Firehose / webhook, events/s", webhook / firehose, "x"),
        BenchResult(NAME, "decode_firehose alone, one core", decoded, "events/s"),
    ]
    for metric, measured in clouds.items():
        if isinstance(measured, str):
            results.append(BenchResult(NAME, metric, 0.0, "events/s", detail={"note": measured}))
        else:
            seconds, count = measured
            results.append(BenchResult(NAME, metric, count / seconds, "events/s", detail={"events": count}))
    return results


if __name__ == "__main__":
    for result in run():
        print(f"{result.metric}: {result.value:,.1f} {result.unit}")
