"""GKE Cloud Logging entries (real ones from the corpus) become audit.k8s.io/v1 events."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetrail.intake import format_of, read_path
from kubetrail.intake.gke import NOT_K8S, convert_entry, object_ref
from kubetrail.model import Event, Level, Stage
from tests.intake.shapes import log_entry


def _events(path: Path) -> tuple[list[Event], list[str | None]]:
    events: list[Event] = []
    clusters: list[str | None] = []
    for batch in read_path(path):
        assert batch.rejected == []
        events.extend(batch.events)
        clusters.extend([batch.cluster] * len(batch.events))
    return events, clusters


def test_pod_create_entry(corpus: Path) -> None:
    path = corpus / "gke-khi" / "container_recorder_test_1_1.yaml"
    assert format_of(path) == "gke"
    (event,), (cluster,) = _events(path)
    assert cluster == "sample-cluster"
    assert event.auditID == "85371f7c-2383-4041-96e8-dad63d2d1990"
    assert event.verb == "create"
    assert event.stage == Stage.RESPONSE_COMPLETE
    assert event.level == Level.REQUEST_RESPONSE
    assert event.user.username == "system:serviceaccount:kube-system:replicaset-controller"
    assert event.sourceIPs == ["172.16.0.3"]
    assert event.userAgent.startswith("kube-controller-manager/v1.28.14")
    ref = event.objectRef
    assert ref is not None
    assert (ref.apiGroup, ref.apiVersion, ref.resource, ref.namespace, ref.name, ref.subresource) == (
        "",
        "v1",
        "pods",
        "1-2-deployment-update",
        "nginx-deployment-surge-8655b4b8c5-xf5f4",
        "",
    )
    assert event.requestURI == "/api/v1/namespaces/1-2-deployment-update/pods/nginx-deployment-surge-8655b4b8c5-xf5f4"
    assert event.responseStatus is not None and event.responseStatus.code == 201
    assert event.annotations["authorization.k8s.io/decision"] == "allow"
    assert event.requestReceivedTimestamp == "2024-01-01T01:00:00.000000Z"
    request = json.loads(bytes(event.requestObject))
    assert request["kind"] == "Pod" and "@type" not in request
    response = json.loads(bytes(event.responseObject))
    assert response["metadata"]["uid"] == "c0b4e00d-da76-4255-9a02-670d5b74aa3a"


def test_status_patch_entry_has_the_subresource_and_request_level(corpus: Path) -> None:
    (event,), _ = _events(corpus / "gke-khi" / "container_recorder_test_1_2.yaml")
    assert event.verb == "patch"
    assert event.level == Level.REQUEST
    assert event.objectRef is not None and event.objectRef.subresource == "status"
    assert event.requestURI.endswith("/pods/nginx-deployment-surge-8655b4b8c5-xf5f4/status")
    assert event.responseStatus is not None and event.responseStatus.code == 200


def test_json_array_and_gzip_ndjson_give_the_same_events(corpus: Path, tmp_path: Path) -> None:
    entries = [yaml.safe_load(path.read_text()) for path in sorted((corpus / "gke-khi").glob("*.yaml"))]
    array = tmp_path / "gcloud.json"
    array.write_text(json.dumps(entries, default=str))
    ndjson = tmp_path / "sink.json.gz"
    ndjson.write_bytes(gzip.compress("\n".join(json.dumps(entry, default=str) for entry in entries).encode()))
    from_array, _ = _events(array)
    from_ndjson, _ = _events(ndjson)
    assert [event.auditID for event in from_array] == [event.auditID for event in from_ndjson]
    assert [event.verb for event in from_array] == ["create", "patch"]


def test_other_cloud_logging_entries_are_skipped(tmp_path: Path) -> None:
    entry = {
        "insertId": "x1",
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "serviceName": "compute.googleapis.com",
        },
        "timestamp": "2024-01-01T00:00:00Z",
    }
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps([entry]))
    (batch,) = list(read_path(path))
    assert batch.events == [] and batch.skipped == {NOT_K8S: 1}


def test_resource_names_follow_the_request_info_rules() -> None:
    cases = {
        "core/v1/namespaces/kube-system": (
            "namespaces",
            "kube-system",
            "kube-system",
            "",
            "/api/v1/namespaces/kube-system",
        ),
        "core/v1/namespaces/dev/status": ("namespaces", "dev", "dev", "status", "/api/v1/namespaces/dev/status"),
        "core/v1/nodes/node-1": ("nodes", "", "node-1", "", "/api/v1/nodes/node-1"),
        "apps/v1/namespaces/web/deployments": (
            "deployments",
            "web",
            "",
            "",
            "/apis/apps/v1/namespaces/web/deployments",
        ),
        "rbac.authorization.k8s.io/v1/clusterrolebindings/admin": (
            "clusterrolebindings",
            "",
            "admin",
            "",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/admin",
        ),
        "core/v1/namespaces/web/pods/p1/exec": ("pods", "web", "p1", "exec", "/api/v1/namespaces/web/pods/p1/exec"),
    }
    for resource_name, (resource, namespace, name, subresource, uri) in cases.items():
        ref, path = object_ref(resource_name)
        assert ref is not None
        assert (ref.resource, ref.namespace, ref.name, ref.subresource, path) == (
            resource,
            namespace,
            name,
            subresource,
            uri,
        )


def _apply(created: str | None, *, stamp: str = "2026-05-04T09:30:00.004000Z", **changes: object) -> dict[str, Any]:
    """A server-side apply of a DaemonSet as the apiserver records it, answered 200 or 201."""
    response: dict[str, Any] = {"kind": "DaemonSet", "apiVersion": "apps/v1", "metadata": {"name": "agent"}}
    if created is not None:
        response["metadata"]["creationTimestamp"] = created
    event: dict[str, Any] = {
        "auditID": "a1",
        "stage": "ResponseComplete",
        "verb": "patch",
        "user": {"username": "alice@example.com"},
        "objectRef": {
            "resource": "daemonsets",
            "namespace": "ops",
            "name": "agent",
            "apiGroup": "apps",
            "apiVersion": "v1",
        },
        "responseStatus": {"code": 200},
        "requestObject": {"kind": "DaemonSet", "apiVersion": "apps/v1", "metadata": {"name": "agent"}},
        "responseObject": response,
        "stageTimestamp": stamp,
    }
    event.update(changes)
    return event


def _code(event: dict[str, Any]) -> int:
    (converted,), _ = convert_entry(log_entry(event))
    assert converted.responseStatus is not None
    return converted.responseStatus.code


@pytest.mark.parametrize(
    ("created", "stamp"),
    [
        ("2026-05-04T09:30:00Z", "2026-05-04T09:30:00.004000Z"),
        ("2026-05-04T09:29:59Z", "2026-05-04T09:30:00.004000Z"),  # the request straddled a second boundary
        ("2026-05-04T09:30:01Z", "2026-05-04T09:30:00.998000Z"),
    ],
)
def test_an_update_or_patch_whose_response_was_created_at_its_time_is_a_creation(created: str, stamp: str) -> None:
    assert _code(_apply(created, stamp=stamp)) == 201
    assert _code(_apply(created, stamp=stamp, verb="update")) == 201


@pytest.mark.parametrize(
    "event",
    [
        _apply("2026-04-13T16:02:41Z"),  # an apply that changed an object created weeks before
        _apply("2026-05-04T09:29:58Z"),
        _apply(None),  # the response names no creation time
        {key: value for key, value in _apply("2026-05-04T09:30:00Z").items() if key != "responseObject"},  # Request
        _apply(
            "2026-05-04T09:30:00Z",
            objectRef={
                "resource": "daemonsets",
                "namespace": "ops",
                "name": "agent",
                "subresource": "status",
                "apiGroup": "apps",
                "apiVersion": "v1",
            },
        ),  # a subresource never creates its object
    ],
    ids=["old-object", "two-seconds-before", "no-creation-time", "no-response-body", "status-subresource"],
)
def test_other_updates_and_patches_are_changes(event: dict[str, Any]) -> None:
    assert _code(event) == 200


def test_a_refused_apply_keeps_its_refusal() -> None:
    assert _code(_apply("2026-05-04T09:30:00Z", responseStatus={"code": 403})) == 403
