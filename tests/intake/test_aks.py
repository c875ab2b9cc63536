"""AKS diagnostic-setting exports: `records[].properties.log` of the kube-audit categories."""

from __future__ import annotations

import json
from pathlib import Path

from kubetrail.intake import format_of, read_path
from kubetrail.intake.aks import cluster_of

RESOURCE_ID = (
    "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG-PROD/PROVIDERS/"
    "MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/PROD-AKS"
)


def _record(category: str, log: object) -> dict[str, object]:
    return {
        "time": "2024-05-01T10:00:00.0000000Z",
        "resourceId": RESOURCE_ID,
        "category": category,
        "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
        "properties": {"log": log, "stream": "stdout", "pod": "kube-apiserver-5c7d9f6b8-abcde"},
    }


def _event(number: int) -> str:
    return json.dumps(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": f"aks-{number}",
            "stage": "ResponseComplete",
            "requestURI": "/api/v1/namespaces/kube-system/secrets/token",
            "verb": "get",
            "user": {"username": "masterclient", "groups": ["system:masters"]},
            "objectRef": {"resource": "secrets", "namespace": "kube-system", "name": "token", "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "code": 200},
            "requestReceivedTimestamp": "2024-05-01T10:00:00.000100Z",
            "stageTimestamp": "2024-05-01T10:00:00.000900Z",
        }
    )


def test_records_document_keeps_audit_categories_only(tmp_path: Path) -> None:
    document = {
        "records": [
            _record("kube-audit", _event(1)),
            _record("kube-apiserver", "I0501 10:00:00.000000 1 controller.go:1] started"),
            _record("kube-audit-admin", _event(2)),
            _record("kube-audit", '{"kind":"Event","auditID":"x"'),
        ]
    }
    path = tmp_path / "eventhub.json"
    path.write_text(json.dumps(document, indent=2))
    assert format_of(path) == "aks"
    batches = list(read_path(path))
    events = [event for batch in batches for event in batch.events]
    assert [event.auditID for event in events] == ["aks-1", "aks-2"]
    assert {batch.cluster for batch in batches if batch.events} == {"prod-aks"}
    assert sum(len(batch.rejected) for batch in batches) == 1
    skipped = {reason: count for batch in batches for reason, count in batch.skipped.items()}
    assert skipped == {"category kube-apiserver is not an audit log": 1}
    raw = next(raw for batch in batches for raw in batch.raws if raw is not None)
    assert raw == _event(1).encode()


def test_json_lines_blob(tmp_path: Path) -> None:
    path = tmp_path / "PT1H.json"
    path.write_text("\n".join(json.dumps(_record("kube-audit", _event(number))) for number in range(5)) + "\n")
    assert format_of(path) == "aks"
    events = [event for batch in read_path(path) for event in batch.events]
    assert [event.auditID for event in events] == [f"aks-{number}" for number in range(5)]


def test_cluster_name_from_the_resource_id() -> None:
    assert cluster_of(RESOURCE_ID) == "prod-aks"
    assert cluster_of("/subscriptions/x") is None
