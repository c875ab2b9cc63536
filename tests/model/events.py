"""Audit events written from the Kubernetes audit.k8s.io/v1 Event reference, shared by the model tests."""

from __future__ import annotations

import json
from typing import Any

# A resource request with every field the reference documents (a pod created by an impersonating admin).
FULL_EVENT: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "RequestResponse",
    "auditID": "8f1c8a5e-6b52-4a55-9a23-0f8f3b2f7c11",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/payments/pods?fieldManager=kubectl-client-side-apply",
    "verb": "create",
    "user": {
        "username": "jane@example.com",
        "uid": "2f0c5c0e-1b4b-4c8e-9b5e-7d6a3f1e2d44",
        "groups": ["platform-admins", "system:authenticated"],
        "extra": {"scopes.example.com/team": ["payments", "oncall"]},
    },
    "impersonatedUser": {"username": "system:serviceaccount:payments:deployer", "groups": ["system:serviceaccounts"]},
    "sourceIPs": ["10.0.12.7", "2001:db8::7"],
    "userAgent": "kubectl/v1.31.0 (linux/amd64) kubernetes/abcdef0",
    "objectRef": {
        "resource": "pods",
        "namespace": "payments",
        "name": "api-7c9d",
        "uid": "0b8f2a1c-3d4e-4f50-8a6b-7c8d9e0f1a2b",
        "apiVersion": "v1",
        "resourceVersion": "48213",
    },
    "responseStatus": {"metadata": {}, "code": 201},
    "requestObject": {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "api-7c9d", "namespace": "payments", "labels": {"app": "api"}},
        "spec": {
            "containers": [
                {"name": "api", "image": "registry.example.com/api:1.4.2", "securityContext": {"privileged": False}}
            ]
        },
    },
    "responseObject": {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "api-7c9d", "uid": "0b8f2a1c-3d4e-4f50-8a6b-7c8d9e0f1a2b", "resourceVersion": "48213"},
        "spec": {"containers": [{"name": "api", "image": "registry.example.com/api:1.4.2"}]},
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    },
    "requestReceivedTimestamp": "2026-03-19T10:30:00.050000Z",
    "stageTimestamp": "2026-03-19T10:30:00.061234Z",
    "annotations": {
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": 'RBAC: allowed by ClusterRoleBinding "admins" of ClusterRole "cluster-admin"',
        "pod-security.kubernetes.io/enforce-policy": "restricted:latest",
    },
}

# A non-resource request: no objectRef; metadata level, first stage.
HEALTHZ_EVENT: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Metadata",
    "auditID": "c0ffee00-0000-4000-8000-000000000001",
    "stage": "RequestReceived",
    "requestURI": "/healthz?verbose=1",
    "verb": "get",
    "user": {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
    "sourceIPs": ["192.0.2.10"],
    "userAgent": "kube-probe/1.31",
    "requestReceivedTimestamp": "2026-03-19T10:30:01.000000Z",
    "stageTimestamp": "2026-03-19T10:30:01.000000Z",
}

# The same shape as audit.k8s.io/v1beta1 wrote it: ObjectMeta and a second-precision `timestamp`.
V1BETA1_EVENT: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1beta1",
    "metadata": {"creationTimestamp": "2019-05-02T08:00:00Z"},
    "level": "Request",
    "timestamp": "2019-05-02T08:00:00Z",
    "auditID": "5e3e0d3a-9d1f-4b8e-8a39-3c9e6f7a1b2c",
    "stage": "ResponseComplete",
    "requestURI": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    "verb": "create",
    "user": {"username": "minikube-user", "groups": ["system:masters", "system:authenticated"]},
    "sourceIPs": ["192.168.99.1"],
    "objectRef": {
        "resource": "clusterrolebindings",
        "name": "ops-admin",
        "apiGroup": "rbac.authorization.k8s.io",
        "apiVersion": "v1",
    },
    "responseStatus": {"metadata": {}, "code": 201},
    "requestObject": {"kind": "ClusterRoleBinding", "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}},
    "requestReceivedTimestamp": "2019-05-02T08:00:00.123456Z",
    "stageTimestamp": "2019-05-02T08:00:00.130000Z",
}


def as_v1(event: dict[str, Any]) -> dict[str, Any]:
    """What a v1 re-encode of `event` must contain: v1 apiVersion, no v1beta1-only fields."""
    result = {key: value for key, value in event.items() if key not in ("metadata", "timestamp")}
    result["apiVersion"] = "audit.k8s.io/v1"
    result.setdefault("kind", "Event")
    return result


def dumps(event: dict[str, Any], **options: Any) -> bytes:
    return json.dumps(event, **options).encode()
