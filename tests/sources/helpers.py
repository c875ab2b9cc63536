"""Helpers for the cloud source tests: a real moto server on loopback, CloudWatch Logs as EKS writes it,
and Amazon Data Firehose's HTTP endpoint delivery requests as Amazon documents them."""

from __future__ import annotations

import base64
import gzip
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.serve.helpers import audit_event, free_port

REGION = "eu-west-1"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": "/nonexistent/kubetrail-test-aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/kubetrail-test-aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@contextmanager
def aws_environment() -> Iterator[None]:
    """Credentials for moto only (never real ones): the SDK's default chain finds these first."""
    saved = {key: os.environ.get(key) for key in [*AWS_ENV, "AWS_PROFILE"]}
    os.environ.update(AWS_ENV)
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server mode on a free loopback port; yields its URL."""
    pytest.importorskip("moto", reason="the dev extra (moto[server]) is not installed")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def logs_client(url: str) -> Any:
    import boto3

    return boto3.client("logs", region_name=REGION, endpoint_url=url)


def unique_cluster() -> str:
    return f"c{uuid.uuid4().hex[:10]}"


def put_audit(
    client: Any, group: str, stream: str, numbers: range | list[int], *, prefix: str, stamp: int
) -> list[str]:
    """Put audit events (one per number, all at `stamp` ms plus their index) into a stream; their auditIDs."""
    events = [audit_event(number, prefix=prefix) for number in numbers]
    client.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": stamp + index, "message": json.dumps(event)} for index, event in enumerate(events)],
    )
    return [str(event["auditID"]) for event in events]


def data_message(group: str, stream: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """A CloudWatch Logs subscription delivery, as a subscription filter sends it to Firehose."""
    return {
        "messageType": "DATA_MESSAGE",
        "owner": "111122223333",
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": ["kubetrail"],
        "logEvents": [
            {"id": str(index), "timestamp": 1714557600000 + index, "message": json.dumps(event)}
            for index, event in enumerate(events)
        ],
    }


def firehose_body(request_id: str, deliveries: list[dict[str, Any]], *, extracted: bool = False) -> bytes:
    """An HTTP endpoint delivery request body: each record base64 of a gzip'd delivery (or, with Firehose's
    message extraction, of each message alone)."""
    if extracted:
        records = [
            {"data": base64.b64encode(event["message"].encode()).decode()}
            for delivery in deliveries
            for event in delivery["logEvents"]
        ]
    else:
        records = [
            {"data": base64.b64encode(gzip.compress(json.dumps(delivery).encode())).decode()} for delivery in deliveries
        ]
    return json.dumps({"requestId": request_id, "timestamp": 1714557601599, "records": records}).encode()


def firehose_headers(request_id: str, key: str | None, **extra: str) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "X-Amz-Firehose-Protocol-Version": "1.0",
        "X-Amz-Firehose-Request-Id": request_id,
        "X-Amz-Firehose-Source-Arn": "arn:aws:firehose:eu-west-1:111122223333:deliverystream/kubetrail-prod",
        **extra,
    }
    if key is not None:
        headers["X-Amz-Firehose-Access-Key"] = key
    return headers


def write_keys(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    path.chmod(0o600)
    return path
