"""`investigate cascade AUDIT_ID` of an update or patch, on events shaped as the controllers write them after a change.

As Kubernetes documents it: changing a Deployment's pod template starts a rollout (the deployment-controller
creates a new ReplicaSet owned by the Deployment, scales it up and the old one down by updating their
`spec.replicas`; the replicaset-controller creates and deletes Pods to match); changing `spec.replicas` only
scales the current ReplicaSet; a metadata change (labels, annotations) starts nothing. Controllers and kubelets
also write `status` on their own schedule (readiness, conditions), before a change as after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetrail.investigate.cascade import (
    KUBELET_STATUS,
    OWNER_UID,
    SAME_OBJECT,
    SCHEDULED,
    build_cascade,
    link,
    merge_stages,
)
from kubetrail.query.source import Source
from tests.investigate.test_cascade import (
    DEPLOYMENT_CONTROLLER,
    DEPLOYMENT_UID,
    KUBELET,
    POD_NAMES,
    POD_UIDS,
    REPLICASET_CONTROLLER,
    RS_NAME,
    RS_UID,
    SCHEDULER,
    _meta,
    _owner,
    _request,
    _rows,
    _shape,
)
from tests.query.events import SOURCE_KINDS, open_source

NEW_RS = "web-7c4d9f8b6"
NEW_RS_UID = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e05"
CI = "system:serviceaccount:ci:deployer"
JANE = "jane@example.com"
CHANGE = 300.0


def _deployment(generation: int) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": _meta("web", DEPLOYMENT_UID, generation=generation),
    }


def _replicaset(name: str, uid: str, replicas: int) -> dict[str, Any]:
    owners = [_owner("Deployment", "web", DEPLOYMENT_UID)]
    return {
        "kind": "ReplicaSet",
        "apiVersion": "apps/v1",
        "metadata": _meta(name, uid, owners),
        "spec": {"replicas": replicas},
    }


def _pod(name: str, uid: str, owner: str = RS_NAME, owner_uid: str = RS_UID) -> dict[str, Any]:
    return {"kind": "Pod", "apiVersion": "v1", "metadata": _meta(name, uid, [_owner("ReplicaSet", owner, owner_uid)])}


def _change(audit_id: str, seconds: float, user: str, patch: dict[str, Any], generation: int) -> list[dict[str, Any]]:
    """A person's (or CI's) patch of deployments/shop/web."""
    return _request(
        audit_id,
        seconds,
        verb="patch",
        resource="deployments",
        api_group="apps",
        name="web",
        user=user,
        request=patch,
        response=_deployment(generation),
    )


def _scale(audit_id: str, seconds: float, name: str, uid: str, replicas: int) -> list[dict[str, Any]]:
    """The deployment-controller setting a ReplicaSet's spec.replicas."""
    body = _replicaset(name, uid, replicas)
    return _request(
        audit_id,
        seconds,
        verb="update",
        resource="replicasets",
        api_group="apps",
        name=name,
        user=DEPLOYMENT_CONTROLLER,
        request=body,
        response=body,
    )


def _status(audit_id: str, seconds: float, resource: str, name: str, uid: str = RS_UID) -> list[dict[str, Any]]:
    """A controller's status write: the deployment's by the deployment-controller, a ReplicaSet's by its own."""
    if resource == "deployments":
        body, user = _deployment(1), DEPLOYMENT_CONTROLLER
    else:
        body, user = _replicaset(name, uid, 2), REPLICASET_CONTROLLER
    return _request(
        audit_id,
        seconds,
        verb="update",
        resource=resource,
        subresource="status",
        api_group="apps",
        name=name,
        user=user,
        request=body,
        response=body,
    )


def _pod_create(audit_id: str, seconds: float, name: str, uid: str, owner: str, owner_uid: str) -> list[dict[str, Any]]:
    asked = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "generateName": f"{owner}-",
            "namespace": "shop",
            "ownerReferences": [_owner("ReplicaSet", owner, owner_uid)],
        },
    }
    return _request(
        audit_id,
        seconds,
        verb="create",
        resource="pods",
        name=None,
        user=REPLICASET_CONTROLLER,
        code=201,
        request=asked,
        response=_pod(name, uid, owner, owner_uid),
    )


def _binding(audit_id: str, seconds: float, name: str, uid: str) -> list[dict[str, Any]]:
    binding = {
        "kind": "Binding",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": "shop", "uid": uid},
        "target": {"kind": "Node", "name": "worker-1"},
    }
    return _request(
        audit_id,
        seconds,
        verb="create",
        resource="pods",
        subresource="binding",
        name=name,
        user=SCHEDULER,
        code=201,
        request=binding,
        response={"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201},
    )


def _pod_status(
    audit_id: str, seconds: float, name: str, uid: str, owner: str = RS_NAME, owner_uid: str = RS_UID
) -> list[dict[str, Any]]:
    return _request(
        audit_id,
        seconds,
        verb="patch",
        resource="pods",
        subresource="status",
        name=name,
        user=KUBELET,
        request={"metadata": {"uid": uid}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        response=_pod(name, uid, owner, owner_uid),
    )


def _pod_delete(audit_id: str, seconds: float, name: str, uid: str, user: str) -> list[dict[str, Any]]:
    """A graceful pod delete: the response is the Pod (with its owner references) marked for deletion."""
    return _request(
        audit_id,
        seconds,
        verb="delete",
        resource="pods",
        name=name,
        user=user,
        request={"kind": "DeleteOptions", "apiVersion": "v1"},
        response=_pod(name, uid),
    )


def _churn(pods_until: float = 1200) -> list[dict[str, Any]]:
    """Status writes on their own schedule, before and after a change, for twenty minutes: the old ReplicaSet's
    every 30 s, the Deployment's every 45 s, a kubelet's for the first pod every 40 s (until `pods_until`)."""
    documents: list[dict[str, Any]] = []
    for index in range(40):
        documents += _status(f"bg-rs-{index}", 12 + 30 * index, "replicasets", RS_NAME)
    for index in range(26):
        documents += _status(f"bg-deployment-{index}", 20 + 45 * index, "deployments", "web")
    for index in range(int(pods_until // 40)):
        documents += _pod_status(f"bg-pod-{index}", 7 + 40 * index, POD_NAMES[0], POD_UIDS[0])
    return documents


def _cascade(documents: list[dict[str, Any]], root: str) -> Any:
    requests = merge_stages(_rows(documents))
    chosen = next(item for item in requests if item.summary.audit_id == root)
    return link(chosen, requests)


def _ids(cascade: Any) -> set[str]:
    return {node.request.audit_id for _, node in cascade.root.walk()}


def _two_patches() -> list[dict[str, Any]]:
    """Jane scales web to 3; twenty seconds later CI scales it to 5, before her new pod has reported Running."""
    documents = _change("jane", CHANGE, JANE, {"spec": {"replicas": 3}}, 2)
    documents += _scale("scale-jane", CHANGE + 0.05, RS_NAME, RS_UID, 3)
    documents += _pod_create(
        "pod-jane", CHANGE + 0.1, f"{RS_NAME}-n3w1a", "a0000000-0000-4000-8000-000000000001", RS_NAME, RS_UID
    )
    documents += _binding("bind-jane", CHANGE + 0.15, f"{RS_NAME}-n3w1a", "a0000000-0000-4000-8000-000000000001")
    documents += _status("deployment-status", CHANGE + 0.2, "deployments", "web")
    documents += _change("ci", CHANGE + 20, CI, {"spec": {"replicas": 5}}, 3)
    documents += _scale("scale-ci", CHANGE + 20.05, RS_NAME, RS_UID, 5)
    for index, suffix in enumerate(("c1aaa", "c1bbb")):
        uid = f"b0000000-0000-4000-8000-00000000000{index}"
        documents += _pod_create(
            f"pod-ci-{index}", CHANGE + 20.1 + index / 50, f"{RS_NAME}-{suffix}", uid, RS_NAME, RS_UID
        )
    documents += _pod_status("status-jane", CHANGE + 22, f"{RS_NAME}-n3w1a", "a0000000-0000-4000-8000-000000000001")
    documents += _status("rs-status", CHANGE + 23, "replicasets", RS_NAME)
    return documents


def test_a_patch_is_credited_until_another_client_changes_the_object() -> None:
    documents = _two_patches()
    jane = _cascade(documents, "jane")
    assert _shape(jane.root) == (
        "jane",
        "root",
        (
            (
                "scale-jane",
                OWNER_UID,
                (("pod-jane", OWNER_UID, (("bind-jane", SCHEDULED, ()), ("status-jane", KUBELET_STATUS, ()))),),
            ),
            ("deployment-status", SAME_OBJECT, ()),
        ),
    )
    # CI's patch takes over: its scaling, the pods it made, and the status written after it are its own
    ci = _cascade(documents, "ci")
    assert _shape(ci.root) == (
        "ci",
        "root",
        (
            (
                "scale-ci",
                OWNER_UID,
                (("pod-ci-0", OWNER_UID, ()), ("pod-ci-1", OWNER_UID, ()), ("rs-status", SAME_OBJECT, ())),
            ),
        ),
    )


def test_status_written_before_a_patch_as_after_it_is_not_credited_to_it() -> None:
    """An annotation starts no rollout: the controllers' and kubelet's periodic status writes are not its doing."""
    documents = _churn()
    documents += _change("annotate", CHANGE, JANE, {"metadata": {"annotations": {"team": "shop"}}}, 1)
    cascade = _cascade(documents, "annotate")
    assert _shape(cascade.root) == ("annotate", "root", ())


def _rollout() -> list[dict[str, Any]]:
    """Jane changes web's image: a rolling update (maxSurge 1, maxUnavailable 0) from RS_NAME to NEW_RS, while
    the old ReplicaSet's and a pod's status writes go on as before."""
    new_pods = (
        (f"{NEW_RS}-a1b2c", "c0000000-0000-4000-8000-000000000000"),
        (f"{NEW_RS}-d3e4f", "c0000000-0000-4000-8000-000000000001"),
    )
    image = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27.2"}]}}}}
    documents = _churn(pods_until=CHANGE + 6)  # until the pod is deleted
    documents += _change("image", CHANGE, JANE, image, 2)
    created = _replicaset(NEW_RS, NEW_RS_UID, 1)
    documents += _request(
        "rs-new",
        CHANGE + 0.05,
        verb="create",
        resource="replicasets",
        api_group="apps",
        name=NEW_RS,
        user=DEPLOYMENT_CONTROLLER,
        code=201,
        request=created,
        response=created,
    )
    documents += _pod_create("pod-new-0", CHANGE + 0.1, *new_pods[0], NEW_RS, NEW_RS_UID)
    documents += _binding("bind-new-0", CHANGE + 0.15, *new_pods[0])
    documents += _pod_status("status-new-0", CHANGE + 3, *new_pods[0], NEW_RS, NEW_RS_UID)
    documents += _status("rs-new-status", CHANGE + 3.1, "replicasets", NEW_RS, NEW_RS_UID)
    documents += _scale("rs-new-scale", CHANGE + 3.2, NEW_RS, NEW_RS_UID, 2)
    documents += _scale("rs-old-scale", CHANGE + 3.25, RS_NAME, RS_UID, 1)
    documents += _pod_create("pod-new-1", CHANGE + 3.3, *new_pods[1], NEW_RS, NEW_RS_UID)
    documents += _pod_delete("delete-old-1", CHANGE + 3.32, POD_NAMES[1], POD_UIDS[1], REPLICASET_CONTROLLER)
    documents += _binding("bind-new-1", CHANGE + 3.35, *new_pods[1])
    documents += _scale("rs-old-scale-2", CHANGE + 6, RS_NAME, RS_UID, 0)
    documents += _pod_delete("delete-old-0", CHANGE + 6.05, POD_NAMES[0], POD_UIDS[0], REPLICASET_CONTROLLER)
    documents += _pod_delete("kubelet-delete-1", CHANGE + 33.4, POD_NAMES[1], POD_UIDS[1], KUBELET)
    documents += _pod_delete("kubelet-delete-0", CHANGE + 36.1, POD_NAMES[0], POD_UIDS[0], KUBELET)
    return documents


ROLLOUT = (
    "image",
    "root",
    (
        (
            "rs-new",
            OWNER_UID,
            (
                ("pod-new-0", OWNER_UID, (("bind-new-0", SCHEDULED, ()), ("status-new-0", KUBELET_STATUS, ()))),
                ("rs-new-status", SAME_OBJECT, ()),
                ("rs-new-scale", SAME_OBJECT, ()),
                ("pod-new-1", OWNER_UID, (("bind-new-1", SCHEDULED, ()),)),
            ),
        ),
        (
            "rs-old-scale",
            OWNER_UID,
            (
                ("delete-old-1", OWNER_UID, (("kubelet-delete-1", SAME_OBJECT, ()),)),
                ("rs-old-scale-2", SAME_OBJECT, ()),
                ("delete-old-0", OWNER_UID, (("kubelet-delete-0", SAME_OBJECT, ()),)),
            ),
        ),
    ),
)


def test_a_template_change_still_leads_to_the_new_replicaset_its_pods_and_the_scale_down() -> None:
    cascade = _cascade(_rollout(), "image")
    assert _shape(cascade.root) == ROLLOUT
    assert not {audit_id for audit_id in _ids(cascade) if audit_id.startswith("bg-")}
    assert cascade.inferred() == 0


@pytest.fixture(params=SOURCE_KINDS)
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Source]:
    documents = _rollout()
    documents += _change("annotate", CHANGE + 400, JANE, {"metadata": {"annotations": {"team": "shop"}}}, 2)
    with open_source(request.param, tmp_path, documents) as opened:
        yield opened


def test_build_cascade_reads_the_status_writes_before_a_change(source: Source) -> None:
    """The source is asked for the horizon before the change too: without it the churn would look caused."""
    rollout = build_cascade(source, "image")
    assert rollout is not None and _shape(rollout.root) == ROLLOUT
    annotate = build_cascade(source, "annotate")
    assert annotate is not None and _shape(annotate.root) == ("annotate", "root", ())
