"""`kubetrail serve` with a live EKS source: a real serve process pulling from moto's CloudWatch Logs on loopback,
its sources in /metrics and /readyz, and a restart that reads nothing twice."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve.helpers import audit_ids, start_serve
from tests.sources.helpers import AWS_ENV, REGION, aws_environment, logs_client, moto_server, put_audit, unique_cluster

pytest.importorskip("boto3", reason="the aws extra (boto3) is not installed")


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
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
