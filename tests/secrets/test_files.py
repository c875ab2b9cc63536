"""Scanning managed-cloud exports through their readers; redaction refuses what it cannot keep byte-exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubetrail.secrets import SecretsError, redact_file, scan_file

EVENT = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "RequestResponse",
    "auditID": "eks-secret-1",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/app/secrets/db",
    "verb": "get",
    "user": {"username": "jane"},
    "objectRef": {"resource": "secrets", "namespace": "app", "name": "db", "apiVersion": "v1"},
    "responseStatus": {"metadata": {}, "code": 200},
    "responseObject": {"kind": "Secret", "apiVersion": "v1", "data": {"token": "c2VjcmV0LXRva2Vu"}},
    "requestReceivedTimestamp": "2024-05-01T10:00:00.000000Z",
    "stageTimestamp": "2024-05-01T10:00:00.001000Z",
}


@pytest.fixture
def eks_export(tmp_path: Path) -> Path:
    """An EKS control-plane log exported to S3: each line a timestamp and the event's JSON."""
    path = tmp_path / "000000"
    path.write_text(f"2024-05-01T10:00:00.003Z {json.dumps(EVENT)}\n")
    return path


def test_eks_export_is_scanned_through_its_reader(eks_export: Path) -> None:
    findings = list(scan_file(eks_export))
    assert [(item.audit_id, item.path, item.kind, item.line) for item in findings] == [
        ("eks-secret-1", "responseObject.data.token", "secret-data", None)
    ]


def test_exports_cannot_be_redacted_in_place(eks_export: Path, tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="EKS export") as caught:
        redact_file(eks_export, tmp_path / "out")
    assert "ingest" in caught.value.hint
