"""`cascade AUDIT_ID` on events shaped as Kubernetes writes them when a person creates or deletes a Deployment.

The shapes follow the documented behaviour: the deployment-controller creates a ReplicaSet named
`<deployment>-<pod-template-hash>` whose ownerReferences name the Deployment's uid; the replicaset-controller
creates Pods from `generateName: <replicaset>-` owned by the ReplicaSet (the audit objectRef of such a create has
no name, only the response body does); the scheduler POSTs `pods/binding`; a kubelet PATCHes `pods/status`;
deleting an owner (background propagation) leaves the garbage collector to delete the dependents.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kubetrail.investigate.cascade import (
    GARBAGE,
    KUBELET_STATUS,
    OWNER_NAME,
    OWNER_UID,
    SAME_OBJECT,
    SCHEDULED,
    Cascade,
    CascadeNode,
    build_cascade,
    link,
    merge_stages,
)
from kubetrail.query.source import Source
from tests.query.events import SOURCE_KINDS, event, open_source

T0 = datetime(2026, 3, 19, 10, 0, 0, tzinfo=UTC)
DEPLOYMENT_UID = "6b1f0c8e-2a4d-4c1e-9a55-0d3c2b7e1f01"
RS_UID = "0f3c9a7e-5b2d-4e6f-8a1b-2c3d4e5f6a02"
POD_UIDS = ("9a8b7c6d-1e2f-4a3b-8c4d-5e6f7a8b9c03", "9a8b7c6d-1e2f-4a3b-8c4d-5e6f7a8b9c04")
RS_NAME = "web-5d9c7b6f4"
POD_NAMES = (f"{RS_NAME}-x7k2p", f"{RS_NAME}-q9z4m")
DEPLOYMENT_CONTROLLER = "system:serviceaccount:kube-system:deployment-controller"
REPLICASET_CONTROLLER = "system:serviceaccount:kube-system:replicaset-controller"
GC = "system:serviceaccount:kube-system:generic-garbage-collector"
SCHEDULER = "system:kube-scheduler"
KUBELET = "system:node:worker-1"


def _at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _owner(kind: str, name: str, uid: str, api_version: str = "apps/v1") -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _request(
    audit_id: str,
    seconds: float,
    *,
    verb: str,
    resource: str,
    name: str | None,
    user: str,
    namespace: str = "shop",
    subresource: str | None = None,
    api_group: str | None = None,
    code: int = 200,
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    bodies: bool = True,
) -> list[dict[str, Any]]:
    """The RequestReceived and ResponseComplete events of one request (a create learns its name at the end)."""
    common: dict[str, Any] = {
        "verb": verb,
        "resource": resource,
        "subresource": subresource,
        "namespace": namespace,
        "api_group": api_group,
        "user": user,
    }
    received = event(
        audit_id,
        stage="RequestReceived",
        time=_at(seconds),
        code=None,
        name=None if verb == "create" and subresource is None else name,
        level="RequestResponse" if bodies else "Metadata",
        **common,
    )
    extra: dict[str, Any] = {"stageTimestamp": _at(seconds + 0.004)}
    if bodies and request is not None:
        extra["requestObject"] = request
    if bodies and response is not None:
        extra["responseObject"] = response
    completed = event(
        audit_id,
        time=_at(seconds),
        code=code,
        name=name,
        level="RequestResponse" if bodies else "Metadata",
        extra=extra,
        **common,
    )
    return [received, completed]


def _meta(name: str, uid: str, owners: list[dict[str, Any]] | None = None, **more: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "shop", "uid": uid, **more}
    if owners:
        meta["ownerReferences"] = owners
    return meta


def rollout(*, bodies: bool = True, objectref_pod_names: bool = False) -> list[dict[str, Any]]:
    """A person creates deployments/shop/web; the controllers follow; unrelated writes happen around it."""
    deployment = {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "web", "namespace": "shop"}}
    created = {**deployment, "metadata": _meta("web", DEPLOYMENT_UID)}
    rs_owner = [_owner("Deployment", "web", DEPLOYMENT_UID)]
    replicaset = {"kind": "ReplicaSet", "apiVersion": "apps/v1", "metadata": _meta(RS_NAME, RS_UID, rs_owner)}
    events = _request(
        "root",
        0,
        verb="create",
        resource="deployments",
        api_group="apps",
        name="web",
        user="jane@example.com",
        code=201,
        request=deployment,
        response=created,
        bodies=bodies,
    )
    events += _request(
        "rs",
        0.05,
        verb="create",
        resource="replicasets",
        api_group="apps",
        name=RS_NAME,
        user=DEPLOYMENT_CONTROLLER,
        code=201,
        request=replicaset,
        response=replicaset,
        bodies=bodies,
    )
    events += _request(
        "deployment-status",
        0.1,
        verb="update",
        resource="deployments",
        subresource="status",
        api_group="apps",
        name="web",
        user=DEPLOYMENT_CONTROLLER,
        request=created,
        response=created,
        bodies=bodies,
    )
    pod_owner = [_owner("ReplicaSet", RS_NAME, RS_UID)]
    for index, (pod_name, pod_uid) in enumerate(zip(POD_NAMES, POD_UIDS, strict=True)):
        asked = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"generateName": f"{RS_NAME}-", "namespace": "shop", "ownerReferences": pod_owner},
        }
        made = {"kind": "Pod", "apiVersion": "v1", "metadata": _meta(pod_name, pod_uid, pod_owner)}
        events += _request(
            f"pod-{index}",
            0.2 + index * 0.01,
            verb="create",
            resource="pods",
            name=pod_name if objectref_pod_names else None,  # generateName: the objectRef has no name
            user=REPLICASET_CONTROLLER,
            code=201,
            request=asked,
            response=made,
            bodies=bodies,
        )
        binding = {
            "kind": "Binding",
            "apiVersion": "v1",
            "metadata": {"name": pod_name, "namespace": "shop", "uid": pod_uid},
            "target": {"kind": "Node", "name": "worker-1"},
        }
        events += _request(
            f"bind-{index}",
            0.3 + index * 0.01,
            verb="create",
            resource="pods",
            subresource="binding",
            name=pod_name,
            user=SCHEDULER,
            code=201,
            request=binding,
            response={"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201},
            bodies=bodies,
        )
    events += _request(
        "status-0",
        2.5,
        verb="patch",
        resource="pods",
        subresource="status",
        name=POD_NAMES[0],
        user=KUBELET,
        request={"metadata": {"uid": POD_UIDS[0]}, "status": {"phase": "Running"}},
        response={"kind": "Pod", "apiVersion": "v1", "metadata": _meta(POD_NAMES[0], POD_UIDS[0], pod_owner)},
        bodies=bodies,
    )
    # Not caused by the root: another Deployment's ReplicaSet, a pod in another namespace, the person's own
    # later change, and a pod of the ReplicaSet created after the horizon.
    other_owner = [_owner("Deployment", "webhook", "11111111-2222-4333-8444-555555555555")]
    events += _request(
        "other-rs",
        0.06,
        verb="create",
        resource="replicasets",
        api_group="apps",
        name="webhook-7f8c9d6b5",
        user=DEPLOYMENT_CONTROLLER,
        code=201,
        response={
            "kind": "ReplicaSet",
            "metadata": _meta("webhook-7f8c9d6b5", "66666666-7777-4888-9999-000000000000", other_owner),
        },
        bodies=bodies,
    )
    events += _request(
        "other-namespace",
        0.25,
        verb="create",
        resource="pods",
        namespace="payments",
        name="api-6f7d8c9b5-abcde",
        user=REPLICASET_CONTROLLER,
        code=201,
        bodies=bodies,
    )
    events += _request(
        "person-later",
        60,
        verb="patch",
        resource="deployments",
        api_group="apps",
        name="web",
        user="jane@example.com",
        request={"spec": {"replicas": 3}},
        bodies=bodies,
    )
    late = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": _meta(f"{RS_NAME}-late1", "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", pod_owner),
    }
    events += _request(
        "late-pod",
        11 * 60,
        verb="create",
        resource="pods",
        name=f"{RS_NAME}-late1",
        user=REPLICASET_CONTROLLER,
        code=201,
        response=late,
        bodies=bodies,
    )
    return events


def _rows(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents as a Source returns them (the columns `merge_stages` reads)."""

    def when(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return [
        {
            "audit_id": doc["auditID"],
            "time": when(doc["requestReceivedTimestamp"]),
            "stage_time": when(doc["stageTimestamp"]),
            "stage": doc["stage"],
            "user": doc["user"]["username"],
            "verb": doc["verb"],
            "resource": doc.get("objectRef", {}).get("resource"),
            "subresource": doc.get("objectRef", {}).get("subresource"),
            "namespace": doc.get("objectRef", {}).get("namespace"),
            "name": doc.get("objectRef", {}).get("name"),
            "response_code": doc.get("responseStatus", {}).get("code"),
            "request_uri": doc["requestURI"],
            "level": doc["level"],
            "cluster": "default",
            "event": json.dumps(doc),
        }
        for doc in documents
    ]


def _cascade(documents: list[dict[str, Any]], root: str = "root", **options: Any) -> Cascade:
    requests = merge_stages(_rows(documents))
    chosen = next(item for item in requests if item.summary.audit_id == root)
    return link(chosen, requests, **options)


def _shape(node: CascadeNode) -> tuple[str, str, tuple[Any, ...]]:
    return node.request.audit_id, node.reason, tuple(_shape(child) for child in node.children)


EXPECTED = (
    "root",
    "root",
    (
        (
            "rs",
            OWNER_UID,
            (
                ("pod-0", OWNER_UID, (("bind-0", SCHEDULED, ()), ("status-0", KUBELET_STATUS, ()))),
                ("pod-1", OWNER_UID, (("bind-1", SCHEDULED, ()),)),
            ),
        ),
        ("deployment-status", SAME_OBJECT, ()),
    ),
)


def test_a_deployment_create_leads_to_its_replicaset_pods_bindings_and_status() -> None:
    cascade = _cascade(rollout())
    assert _shape(cascade.root) == EXPECTED
    assert cascade.count() == len(cascade) == 8
    assert cascade.inferred() == 0


def test_stages_merge_into_one_node_and_the_generated_name_comes_from_the_body() -> None:
    cascade = _cascade(rollout())
    pod = cascade.root.children[0].children[0].request
    assert pod.name == POD_NAMES[0]  # the objectRef of a generateName create has none
    assert pod.stages == ("RequestReceived", "ResponseComplete")
    assert pod.code == 201 and pod.user == REPLICASET_CONTROLLER
    assert pod.last - pod.first == timedelta(milliseconds=4)
    assert cascade.root.children[0].delay == timedelta(milliseconds=50)
    assert cascade.root.children[0].children[0].children[1].delay == timedelta(seconds=2.5)


def test_unrelated_requests_and_those_after_the_horizon_are_left_out() -> None:
    ids = {node.request.audit_id for _, node in _cascade(rollout()).root.walk()}
    assert not ids & {"other-rs", "other-namespace", "person-later", "late-pod"}
    longer = {node.request.audit_id for _, node in _cascade(rollout(), horizon=timedelta(minutes=12)).root.walk()}
    assert "late-pod" in longer and "other-rs" not in longer


def test_without_bodies_links_are_inferred_from_names_and_say_so() -> None:
    cascade = _cascade(rollout(bodies=False, objectref_pod_names=True))
    nodes = {node.request.audit_id: node for _, node in cascade.root.walk()}
    assert not set(nodes) & {"other-rs", "other-namespace", "person-later", "late-pod"}
    assert nodes["rs"].reason.startswith("inferred") and "<deployment>-<hash>" in nodes["rs"].reason
    assert nodes["pod-0"].reason.startswith("inferred") and "ReplicaSet" in nodes["pod-0"].reason
    # the same object is the same object, bodies or not
    assert nodes["deployment-status"].reason == SAME_OBJECT
    assert nodes["bind-0"].reason == SCHEDULED
    assert cascade.inferred() == 3


def test_without_bodies_or_names_pods_are_the_weakest_guess() -> None:
    cascade = _cascade(rollout(bodies=False))
    nodes = {node.request.audit_id: node for _, node in cascade.root.walk()}
    assert "no name or body recorded" in nodes["pod-0"].reason
    assert "other-namespace" not in nodes


def test_a_job_links_its_pods_by_owner_kind_and_name_when_its_uid_was_not_recorded() -> None:
    documents = _request(
        "job",
        0,
        verb="create",
        resource="jobs",
        api_group="batch",
        name="backup",
        user="jane@example.com",
        code=201,
        bodies=False,
    )
    owner = [_owner("Job", "backup", "12121212-3434-4565-8787-909090909090", "batch/v1")]
    documents += _request(
        "job-pod",
        0.3,
        verb="create",
        resource="pods",
        name="backup-8xk2v",
        user="system:serviceaccount:kube-system:job-controller",
        code=201,
        response={"kind": "Pod", "metadata": _meta("backup-8xk2v", "13131313-3434-4565-8787-909090909090", owner)},
    )
    cascade = _cascade(documents, root="job")
    assert _shape(cascade.root) == ("job", "root", (("job-pod", OWNER_NAME, ()),))


def _deletion() -> list[dict[str, Any]]:
    """The rollout, then ten minutes later the person deletes the Deployment and the garbage collector cleans up."""
    documents = rollout()
    later = 15 * 60
    documents += _request(
        "delete",
        later,
        verb="delete",
        resource="deployments",
        api_group="apps",
        name="web",
        user="jane@example.com",
        request={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
        response={
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Success",
            "details": {"name": "web", "group": "apps", "kind": "deployments", "uid": DEPLOYMENT_UID},
        },
    )
    documents += _request(
        "gc-rs",
        later + 0.1,
        verb="delete",
        resource="replicasets",
        api_group="apps",
        name=RS_NAME,
        user=GC,
        bodies=False,
    )
    for index, pod_name in enumerate(POD_NAMES):
        documents += _request(
            f"gc-pod-{index}", later + 0.2, verb="delete", resource="pods", name=pod_name, user=GC, bodies=False
        )
    documents += _request(
        "kubelet-delete", later + 31, verb="delete", resource="pods", name=POD_NAMES[0], user=KUBELET, bodies=False
    )
    # the garbage collector deleting the other Deployment's ReplicaSet at the same moment is not the person's doing
    documents += _request(
        "gc-other",
        later + 0.15,
        verb="delete",
        resource="replicasets",
        api_group="apps",
        name="webhook-7f8c9d6b5",
        user=GC,
        bodies=False,
    )
    return documents


def test_deleting_an_owner_leads_to_the_garbage_collectors_deletes_of_its_dependents() -> None:
    documents = _deletion()
    requests = merge_stages(_rows(documents))
    root = next(item for item in requests if item.summary.audit_id == "delete")
    before = [item for item in requests if item.summary.first < root.summary.first]
    after = [item for item in requests if item.summary.first >= root.summary.first]
    cascade = link(root, after, known=before)
    assert _shape(cascade.root) == (
        "delete",
        "root",
        (
            (
                "gc-rs",
                GARBAGE,
                (
                    ("gc-pod-0", GARBAGE, (("kubelet-delete", SAME_OBJECT, ()),)),
                    ("gc-pod-1", GARBAGE, ()),
                ),
            ),
        ),
    )


@pytest.fixture(params=SOURCE_KINDS)
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Source]:
    documents = _deletion()
    with open_source(request.param, tmp_path, documents) as opened:
        yield opened


def test_build_cascade_queries_the_source(source: Source) -> None:
    cascade = build_cascade(source, "root")
    assert cascade is not None and _shape(cascade.root) == EXPECTED
    deletion = build_cascade(source, "delete")
    assert deletion is not None
    assert [node.request.audit_id for _, node in deletion.root.walk()] == [
        "delete",
        "gc-rs",
        "gc-pod-0",
        "kubelet-delete",
        "gc-pod-1",
    ]
    assert build_cascade(source, "no-such-request") is None
    assert build_cascade(source, 'quote"d') is None


def test_build_cascade_near_the_request_time_or_anywhere(source: Source) -> None:
    """The caller's idea of the request's time only narrows the search: right or wrong, the tree is the same."""
    whole = build_cascade(source, "root")
    assert whole is not None
    moment = whole.root.request.first
    near = build_cascade(source, "root", near=moment)
    assert near is not None and _shape(near.root) == EXPECTED
    wrong = build_cascade(source, "root", near=moment + timedelta(days=3))
    assert wrong is not None and _shape(wrong.root) == EXPECTED
    assert build_cascade(source, "no-such-request", near=moment) is None
