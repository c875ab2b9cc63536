"""EKS CloudWatch Logs exports: S3 export lines, filter-log-events output, subscription deliveries."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from kubetrail.intake import format_of, read_path
from kubetrail.intake.eks import NOT_AUDIT, cluster_of


def _audit_event(number: int, verb: str = "get") -> dict[str, object]:
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"eks-{number}",
        "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/default/pods/p{number}",
        "verb": verb,
        "user": {"username": "arn:aws:iam::111122223333:role/dev", "groups": ["system:authenticated"]},
        "sourceIPs": ["192.0.2.10"],
        "objectRef": {"resource": "pods", "namespace": "default", "name": f"p{number}", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2024-05-01T10:00:00.000001Z",
        "stageTimestamp": "2024-05-01T10:00:00.002000Z",
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }


AUTHENTICATOR = 'time="2024-05-01T10:00:00Z" level=info msg="access granted" arn="arn:aws:iam::111122223333:role/dev"'


def _collect(path: Path) -> tuple[list[str], list[str | None], dict[str, int], int]:
    ids: list[str] = []
    clusters: list[str | None] = []
    skipped: dict[str, int] = {}
    rejected = 0
    for batch in read_path(path):
        ids.extend(event.auditID for event in batch.events)
        clusters.extend([batch.cluster] * len(batch.events))
        for reason, count in batch.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + count
        rejected += len(batch.rejected)
    return ids, clusters, skipped, rejected


def test_s3_export_lines_gzip(tmp_path: Path) -> None:
    lines = [
        f"2024-05-01T10:00:00.003Z {json.dumps(_audit_event(1))}",
        f"2024-05-01T10:00:00.004Z {AUTHENTICATOR}",
        f"2024-05-01T10:00:01.000Z {json.dumps(_audit_event(2, 'delete'))}",
        '2024-05-01T10:00:02.000Z {"kind":"Event","auditID":"broken"',
    ]
    path = tmp_path / "000000.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    assert format_of(path) == "eks"
    ids, _, skipped, rejected = _collect(path)
    assert ids == ["eks-1", "eks-2"]
    assert skipped == {NOT_AUDIT: 1}
    assert rejected == 1


def test_subscription_deliveries_concatenated_like_firehose(tmp_path: Path) -> None:
    def delivery(numbers: list[int]) -> dict[str, object]:
        return {
            "messageType": "DATA_MESSAGE",
            "owner": "111122223333",
            "logGroup": "/aws/eks/prod-eks/cluster",
            "logStream": "kube-apiserver-audit-0123456789abcdef",
            "subscriptionFilters": ["to-firehose"],
            "logEvents": [
                {"id": str(number), "timestamp": 1714557600000, "message": json.dumps(_audit_event(number))}
                for number in numbers
            ],
        }

    control = {"messageType": "CONTROL_MESSAGE", "logGroup": "", "logEvents": []}
    path = tmp_path / "firehose-object"
    path.write_text(json.dumps(control) + json.dumps(delivery([1, 2])) + json.dumps(delivery([3])))
    ids, clusters, _, rejected = _collect(path)
    assert ids == ["eks-1", "eks-2", "eks-3"]
    assert set(clusters) == {"prod-eks"}
    assert rejected == 0


def test_filter_log_events_output(tmp_path: Path) -> None:
    output = {
        "events": [
            {
                "logStreamName": "kube-apiserver-audit-1",
                "timestamp": 1,
                "message": json.dumps(_audit_event(7)),
                "eventId": "1",
            },
            {"logStreamName": "authenticator-1", "timestamp": 2, "message": AUTHENTICATOR, "eventId": "2"},
        ],
        "searchedLogStreams": [],
    }
    path = tmp_path / "events.json"
    path.write_text(json.dumps(output, indent=2))
    assert format_of(path) == "eks"
    ids, _, skipped, _ = _collect(path)
    assert ids == ["eks-7"] and skipped == {NOT_AUDIT: 1}


def test_cluster_name_from_the_log_group() -> None:
    assert cluster_of("/aws/eks/prod-eks/cluster") == "prod-eks"
    assert cluster_of("/aws/lambda/f") is None
