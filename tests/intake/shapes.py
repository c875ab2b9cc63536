"""Audit data in the shapes each source writes, built from generated native events.

Written from each source's documentation: kube-apiserver's log and webhook backends; CloudWatch Logs'
`filter-log-events` output, S3 export task lines, subscription `DATA_MESSAGE` deliveries (to Firehose, to a
Lambda function, and as Amazon Data Firehose POSTs them to an HTTP endpoint); Cloud Logging `LogEntry` records
with an `AuditLog` protoPayload (gcloud's YAML, a JSON array, a Cloud Storage sink's NDJSON); and Azure Monitor
diagnostic-setting records (`records` documents, hourly `PT1H.json` lines, Event Hub batches).
Each shape comes with the number of audit events it holds, counted here, not by kubetrail.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import yaml

from kubetrail.emit.generator import GeneratorConfig, generate
from kubetrail.model import encode_event

AUDIT_LOG = "type.googleapis.com/google.cloud.audit.AuditLog"
AKS_ID = (
    "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG/PROVIDERS/"
    "MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS-PROD"
)
EKS_GROUP = "/aws/eks/eks-prod/cluster"
AUTHENTICATOR_LINE = (
    'time="2024-05-01T10:00:00Z" level=info msg="access granted" arn="arn:aws:iam::111122223333:role/x"'
)


@cache
def native_events(scenarios: tuple[str, ...] = ()) -> tuple[dict[str, Any], ...]:
    """A minute of a small generated cluster, as the apiserver's JSON (every stage)."""
    config = GeneratorConfig(seed=5, rate=3, duration=60, scenarios=scenarios)
    return tuple(json.loads(encode_event(event)) for event in generate(config))


def _millis(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def _log_event(event: dict[str, Any], index: int) -> dict[str, Any]:
    return {"id": str(36000000 + index), "timestamp": _millis(event["stageTimestamp"]), "message": json.dumps(event)}


def data_message(events: list[dict[str, Any]], *, other: int = 0) -> dict[str, Any]:
    """A CloudWatch Logs subscription delivery of an EKS cluster's audit stream."""
    items = [_log_event(event, index) for index, event in enumerate(events)]
    items += [{"id": f"x{n}", "timestamp": 1714557600000, "message": AUTHENTICATOR_LINE} for n in range(other)]
    return {
        "messageType": "DATA_MESSAGE",
        "owner": "111122223333",
        "logGroup": EKS_GROUP,
        "logStream": "kube-apiserver-audit-0123456789abcdef0123456789abcdef",
        "subscriptionFilters": ["kubetrail"],
        "logEvents": items,
    }


def _b64_gzip(document: dict[str, Any]) -> str:
    return base64.b64encode(gzip.compress(json.dumps(document).encode())).decode()


def _chunks(events: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [events[start : start + size] for start in range(0, len(events), size)]


# ---- GKE -------------------------------------------------------------------------------------------------------


def log_entry(event: dict[str, Any]) -> dict[str, Any]:
    """The Cloud Logging entry GKE writes for a completed request (one entry per request)."""
    ref = event["objectRef"]
    group = ref.get("apiGroup") or "core"
    version = ref.get("apiVersion", "v1")
    parts = [group, version]
    if ref.get("namespace"):
        parts += ["namespaces", ref["namespace"]]
    parts.append(ref["resource"])
    if ref.get("name"):
        parts.append(ref["name"])
    if ref.get("subresource"):
        parts.append(ref["subresource"])
    subresource = [ref["subresource"]] if ref.get("subresource") else []
    # GKE spells a group's DNS name reversed (rbac.authorization.k8s.io → io.k8s.authorization.rbac)
    prefix = ".".join(group.split(".")[::-1]) if "." in group else f"io.k8s.{group}"
    method = ".".join([prefix, version, ref["resource"], *subresource, event["verb"]])
    code = event.get("responseStatus", {}).get("code", 200)
    rpc = 0 if code < 400 else {401: 16, 403: 7, 404: 5, 409: 6, 422: 3}.get(code, 13)
    payload: dict[str, Any] = {
        "@type": AUDIT_LOG,
        "serviceName": "k8s.io",
        "methodName": method,
        "resourceName": "/".join(parts),
        "authenticationInfo": {"principalEmail": event["user"].get("username", "")},
        "authorizationInfo": [{"granted": code != 403, "permission": method, "resource": "/".join(parts)}],
        "requestMetadata": {
            "callerIp": (event.get("sourceIPs") or ["0.0.0.0"])[0],
            "callerSuppliedUserAgent": event.get("userAgent", ""),
        },
        "status": {"code": rpc} if rpc == 0 else {"code": rpc, "message": "denied"},
    }
    if "requestObject" in event:
        payload["request"] = {"@type": "k8s.io/Unknown", **event["requestObject"]}
    if "responseObject" in event:
        payload["response"] = {"@type": "k8s.io/Unknown", **event["responseObject"]}
    read = event["verb"] in ("get", "list", "watch")
    return {
        "insertId": event["auditID"],
        "logName": "projects/demo-project/logs/cloudaudit.googleapis.com%2F" + ("data_access" if read else "activity"),
        "operation": {"id": event["auditID"], "first": True, "last": True, "producer": "k8s.io"},
        "protoPayload": payload,
        "resource": {
            "type": "k8s_cluster",
            "labels": {"cluster_name": "gke-prod", "location": "europe-west1", "project_id": "demo-project"},
        },
        "timestamp": event["stageTimestamp"],
        "receiveTimestamp": event["stageTimestamp"],
        "labels": event.get("annotations", {}),
    }


def gke_entries(events: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """GKE logs each request once, when it completes, and only resource requests."""
    return [
        log_entry(event)
        for event in events
        if event["stage"] == "ResponseComplete" and event.get("objectRef", {}).get("resource")
    ]


def gke_event_count(entries: list[dict[str, Any]]) -> int:
    """A granted exec, attach or portforward is a session: ResponseStarted and ResponseComplete."""
    sessions = sum(
        1
        for entry in entries
        if entry["protoPayload"]["resourceName"].rsplit("/", 1)[-1] in ("exec", "attach", "portforward")
        and entry["protoPayload"]["status"]["code"] == 0
    )
    return len(entries) + sessions


# ---- AKS -------------------------------------------------------------------------------------------------------


def aks_record(event: dict[str, Any], *, as_object: bool = False, category: str = "kube-audit") -> dict[str, Any]:
    """One diagnostic-setting record: the apiserver's event in `properties.log`."""
    return {
        "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
        "category": category,
        "ccpNamespace": "0123456789abcdef01234567",
        "resourceId": AKS_ID,
        "properties": {
            "log": event if as_object else json.dumps(event),
            "stream": "stdout",
            "pod": "kube-apiserver-7b6d9c8f5-abcde",
            "containerID": "0123456789abcdef",
        },
        "time": event["stageTimestamp"],
        "Cloud": "AzureCloud",
        "Environment": "prod",
    }


# ---- the shapes ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """A file of one shape, the events it holds, the records that are not audit events, and its cluster."""

    name: str
    data: bytes
    events: int
    skipped: int = 0
    cluster: str | None = None
    suffix: str = ".json"


def _native() -> list[dict[str, Any]]:
    return list(native_events())


def shapes() -> list[Shape]:
    events = _native()
    n = len(events)
    lines = [json.dumps(event) for event in events]
    half = n // 2
    event_list = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": events}
    entries = gke_entries(native_events())
    gke_n = gke_event_count(entries)
    filtered = {
        "events": [
            {
                "logStreamName": "kube-apiserver-audit-0123456789abcdef",
                "timestamp": _millis(event["stageTimestamp"]),
                "message": json.dumps(event),
                "ingestionTime": _millis(event["stageTimestamp"]) + 900,
                "eventId": f"3716{index:040d}",
            }
            for index, event in enumerate(events)
        ],
        "searchedLogStreams": [{"logStreamName": "kube-apiserver-audit-0123456789abcdef", "searchedCompletely": True}],
    }
    export = "\n".join(
        [f"{event['stageTimestamp'][:23]}Z {json.dumps(event)}" for event in events]
        + [f"2024-05-01T10:00:00.000Z {AUTHENTICATOR_LINE}"]
    )
    deliveries = [data_message(chunk, other=1) for chunk in _chunks(events, 50)]
    firehose_s3 = b"".join(gzip.compress(json.dumps(item).encode()) for item in deliveries)
    firehose_http = {
        "requestId": "ed4acda5-034f-9f42-bba1-f29aea6d7d8f",
        "timestamp": 1714557600000,
        "records": [{"data": _b64_gzip(item)} for item in deliveries],
    }
    lambda_event = {"awslogs": {"data": _b64_gzip(data_message(events, other=2))}}
    health = {"id": "", "timestamp": 1714557600000, "message": "CWL CONTROL MESSAGE: Checking health of destination"}
    control = {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logEvents": [health]}
    aks_records = [aks_record(event) for event in events] + [aks_record(events[0], category="kube-apiserver")]
    aks_objects = [aks_record(event, as_object=True) for event in events]
    hub = [json.dumps({"records": aks_records[start : start + 40]}) for start in range(0, len(aks_records), 40)]
    first_half = gzip.compress(("\n".join(lines[:half]) + "\n").encode())
    second_half = gzip.compress(("\n".join(lines[half:]) + "\n").encode())
    list_lines = [json.dumps({**event_list, "items": part}) for part in (events[:half], events[half:])]
    entry_lines = [json.dumps(entry) for entry in entries]
    in_first = len(deliveries[0]["logEvents"]) - 1
    return [
        Shape("native-ndjson", ndjson(lines), n, suffix=".log"),
        Shape("native-gzip-members", first_half + second_half, n, suffix=".log.gz"),
        Shape("native-eventlist", json.dumps(event_list).encode(), n),
        Shape("native-eventlist-lines", ndjson(list_lines), n),
        Shape("native-array", json.dumps(events, indent=2).encode(), n),
        Shape("eks-filter-log-events", json.dumps(filtered, indent=4).encode(), n),
        Shape("eks-s3-export", gzip.compress(export.encode() + b"\n"), n, skipped=1, suffix=".gz"),
        Shape("eks-firehose-s3", firehose_s3, n, skipped=len(deliveries), cluster="eks-prod", suffix=".gz"),
        Shape("eks-firehose-http", json.dumps(firehose_http).encode(), n, len(deliveries), "eks-prod"),
        Shape("eks-lambda", json.dumps(lambda_event).encode(), n, skipped=2, cluster="eks-prod"),
        Shape(
            "eks-control-and-data", (json.dumps(control) + json.dumps(deliveries[0])).encode(), in_first, 1, "eks-prod"
        ),
        Shape("gke-array", json.dumps(entries).encode(), gke_n, cluster="gke-prod"),
        Shape("gke-sink-ndjson", ndjson(entry_lines), gke_n, cluster="gke-prod"),
        Shape(
            "gke-one-entry", json.dumps(entries[0], indent=2).encode(), gke_event_count(entries[:1]), cluster="gke-prod"
        ),
        Shape("gke-gcloud-yaml", yaml.safe_dump_all(entries).encode(), gke_n, cluster="gke-prod", suffix=".yaml"),
        Shape("aks-records", json.dumps({"records": aks_records}).encode(), n, skipped=1, cluster="aks-prod"),
        Shape("aks-records-log-object", json.dumps({"records": aks_objects}).encode(), n, cluster="aks-prod"),
        Shape("aks-pt1h-lines", ndjson(json.dumps(record) for record in aks_records), n, 1, "aks-prod"),
        Shape("aks-event-hub-batches", ndjson(hub), n, skipped=1, cluster="aks-prod"),
    ]


def ndjson(lines: Iterable[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def by_name() -> dict[str, Shape]:
    return {shape.name: shape for shape in shapes()}
