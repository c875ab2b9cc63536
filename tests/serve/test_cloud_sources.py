"""`kubetrail serve` with live cloud sources: a real serve process pulling from moto's CloudWatch Logs, from Google's
Pub/Sub emulator and from Azurite's blobs on loopback, its sources in /metrics and /readyz, a restart that reads
nothing twice and a kill -9 after which the unacknowledged Pub/Sub messages come back and are stored once."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve.helpers import audit_ids, start_serve
from tests.sources.helpers import AWS_ENV, REGION, aws_environment, logs_client, moto_server, put_audit, unique_cluster


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    pytest.importorskip("boto3", reason="the aws extra (boto3) is not installed")
    with aws_environment(), moto_server() as url:
        yield url


def metric(text: str, name: str, source: str) -> float:
    found = re.search(rf'^{name}{{source="{re.escape(source)}"}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else -1.0


def wait_metric(url: str, name: str, source: str, wanted: float, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = httpx.get(f"{url}/metrics").text
        if metric(text, name, source) >= wanted or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def test_serve_pulls_eks_audit_logs_and_reports_each_source(tmp_path: Path, moto: str) -> None:
    client: Any = logs_client(moto)
    cluster, missing = unique_cluster(), unique_cluster()
    group = f"/aws/eks/{cluster}/cluster"
    client.create_log_group(logGroupName=group)
    client.create_log_stream(logGroupName=group, logStreamName="kube-apiserver-audit-1")
    stamp = int(time.time() * 1000) - 5000
    sent = put_audit(client, group, "kube-apiserver-audit-1", range(40), prefix="serve", stamp=stamp)
    config = tmp_path / "serve.yaml"
    config.write_text(
        f"""store: store
listen: 127.0.0.1:0
ui: false
log-level: warning
sources:
  - {{type: eks-cloudwatch, cluster: {cluster}, region: {REGION}, endpoint-url: "{moto}", poll-interval: 50ms}}
"""
    )
    name = f"eks-cloudwatch:{cluster}"
    server = start_serve("--config", str(config), env=AWS_ENV)
    try:
        text = wait_metric(server.url, "kubetrail_source_events_total", name, 40)
        assert any(f"source {name}" in line for line in server.output)  # printed just after the URL line
        assert metric(text, "kubetrail_source_events_total", name) == 40
        assert metric(text, "kubetrail_source_errors_total", name) == 0
        assert metric(text, "kubetrail_source_lag_seconds", name) >= 0
        assert httpx.get(f"{server.url}/readyz").status_code == 200
    finally:
        assert server.stop() == 0, "".join(server.output)
    sent += put_audit(client, group, "kube-apiserver-audit-1", range(40, 45), prefix="serve", stamp=stamp + 1000)

    # restarted, with a second source whose log group does not exist: it is named in /readyz
    config.write_text(
        config.read_text() + f"  - {{type: eks-cloudwatch, cluster: {missing}, region: {REGION}, "
        f'endpoint-url: "{moto}", poll-interval: 10ms}}\n'
    )
    server = start_serve("--config", str(config), env=AWS_ENV)
    try:
        text = wait_metric(server.url, "kubetrail_source_events_total", name, 5)
        assert metric(text, "kubetrail_source_events_total", name) == 5
        assert metric(text, "kubetrail_source_duplicates_total", name) == 0
        deadline = time.monotonic() + 30
        while (ready := httpx.get(f"{server.url}/readyz")).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.status_code == 503 and f"eks-cloudwatch:{missing}" in ready.text
        assert "ResourceNotFoundException" in ready.text and "testing" not in ready.text
    finally:
        assert server.stop() == 0, "".join(server.output)
    stored = audit_ids(tmp_path / "store")
    assert sorted(stored) == sorted(sent)


# ----- GKE (Pub/Sub emulator) and AKS (Azurite) in one serve ------------------------------------------------------


@pytest.fixture(scope="module")
def gcp_and_azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    pytest.importorskip("google.cloud.pubsub_v1", reason="the gcp extra (google-cloud-pubsub) is not installed")
    pytest.importorskip("azure.storage.blob", reason="the azure extra (azure-storage-blob) is not installed")
    from tests.sources.servers import azurite, emulator_environment, pubsub_emulator

    folder = tmp_path_factory.mktemp("clouds")
    with pubsub_emulator(folder) as host, emulator_environment(host), azurite(folder) as connection:
        yield host, connection


def test_serve_pulls_gke_and_aks_and_a_kill_9_loses_and_repeats_nothing(
    tmp_path: Path, gcp_and_azure: tuple[str, str]
) -> None:
    import datetime as dt

    from azure.storage.blob import BlobServiceClient

    from tests.intake.shapes import log_entry
    from tests.serve.helpers import audit_event
    from tests.sources.servers import aks_blob_name, aks_lines, make_topic, publish_entries

    host, connection = gcp_and_azure
    publisher, topic, subscription = make_topic()
    entries = [log_entry(audit_event(number, prefix="gke")) for number in range(400)]
    publish_entries(publisher, topic, entries)
    container = BlobServiceClient.from_connection_string(connection).get_container_client("insights-logs-kube-audit")
    container.create_container()
    blob = container.get_blob_client(aks_blob_name("aks-prod", dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H")))
    blob.create_append_blob()
    aks = [audit_event(number, prefix="aks") for number in range(30)]
    blob.append_block(aks_lines(aks[:20], "aks-prod"))
    config = tmp_path / "serve.yaml"
    config.write_text(
        f"""store: store
listen: 127.0.0.1:0
ui: false
log-level: warning
sources:
  - {{type: gke-pubsub, subscription: "{subscription}", max-messages: 20, wait: 1s, poll-interval: 50ms}}
  - {{type: aks-storage, connection-string-env: KUBETRAIL_TEST_STORAGE, cluster: aks-prod, poll-interval: 100ms}}
"""
    )
    env = {"PUBSUB_EMULATOR_HOST": host, "KUBETRAIL_TEST_STORAGE": connection}
    gke, aks_name = "gke-pubsub:demo-project/" + subscription.rsplit("/", 1)[-1], "aks-storage:aks-prod"
    server = start_serve("--config", str(config), env=env)
    text = wait_metric(server.url, "kubetrail_source_events_total", gke, 100)
    server.process.send_signal(signal.SIGKILL)  # mid-stream: some pulled messages are stored but not acknowledged
    server.process.wait(timeout=30)
    assert 0 < metric(text, "kubetrail_source_events_total", gke) < 400
    blob.append_block(aks_lines(aks[20:], "aks-prod"))

    killed = time.monotonic()
    server = start_serve("--config", str(config), env=env)
    try:
        # the pulled but unacknowledged messages come back once their ack deadline (10 s) has passed
        seen, steady = -1.0, time.monotonic()
        while time.monotonic() < killed + 60:
            now = metric(httpx.get(f"{server.url}/metrics").text, "kubetrail_source_events_total", gke)
            if now != seen:
                seen, steady = now, time.monotonic()
            if time.monotonic() > killed + 12 and time.monotonic() - steady > 1.5:
                break
            time.sleep(0.2)
        text = httpx.get(f"{server.url}/metrics").text
        assert metric(text, "kubetrail_source_errors_total", gke) == 0
        assert metric(text, "kubetrail_source_events_total", aks_name) >= 10
        assert httpx.get(f"{server.url}/readyz").status_code == 200
    finally:
        assert server.stop() == 0, "".join(server.output)
    stored = audit_ids(tmp_path / "store")
    assert sorted(stored) == sorted([entry["operation"]["id"] for entry in entries] + [e["auditID"] for e in aks])
