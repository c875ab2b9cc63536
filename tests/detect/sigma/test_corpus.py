"""SigmaHQ's Kubernetes audit rules load unchanged, and each matches what it describes and not a near miss.

Events are written by hand from each rule's detection and the Kubernetes audit semantics
(objectRef, verbs, pod spec fields), one positive and one near-miss negative per rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubetrail.detect import Engine, load_ruleset
from kubetrail.detect.priority import Priority
from kubetrail.detect.rulefile import RuleSource
from kubetrail.detect.sigma import SigmaRules, load_sigma
from tests.detect.helpers import context


def _ref(
    resource: str, *, namespace: str = "default", name: str = "x", group: str = "", sub: str = ""
) -> dict[str, Any]:
    ref: dict[str, Any] = {"resource": resource, "namespace": namespace, "name": name, "apiVersion": "v1"}
    if group:
        ref["apiGroup"] = group
    if sub:
        ref["subresource"] = sub
    return ref


def _pod(spec: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "x"}, "spec": spec}


_HOSTPATH_POD = _pod(
    {"containers": [{"name": "c", "image": "nginx"}], "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}
)
_PLAIN_POD = _pod({"containers": [{"name": "c", "image": "nginx"}], "volumes": [{"name": "d", "emptyDir": {}}]})
_CAP_POD = _pod(
    {"containers": [{"name": "c", "image": "nginx", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]}
)
_DROP_POD = _pod(
    {"containers": [{"name": "c", "image": "nginx", "securityContext": {"capabilities": {"drop": ["ALL"]}}}]}
)
_FORBID = {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""}

# file stem -> (positive event changes, negative event changes)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "kubernetes_audit_change_admission_controller": (
        {
            "verb": "patch",
            "objectRef": _ref("mutatingwebhookconfigurations", namespace="", group="admissionregistration.k8s.io"),
        },
        {
            "verb": "get",
            "objectRef": _ref("mutatingwebhookconfigurations", namespace="", group="admissionregistration.k8s.io"),
        },
    ),
    "kubernetes_audit_cronjob_modification": (
        {"verb": "create", "objectRef": _ref("cronjobs", group="batch")},
        {"verb": "create", "objectRef": _ref("deployments", group="apps")},
    ),
    "kubernetes_audit_deployment_deleted": (
        {"verb": "delete", "objectRef": _ref("deployments", group="apps")},
        {"verb": "delete", "objectRef": _ref("replicasets", group="apps")},
    ),
    "kubernetes_audit_events_deleted": (
        {"verb": "delete", "objectRef": _ref("events")},
        {"verb": "list", "objectRef": _ref("events")},
    ),
    "kubernetes_audit_exec_into_container": (
        {"verb": "create", "objectRef": _ref("pods", sub="exec")},
        {"verb": "create", "objectRef": _ref("pods", sub="log")},
    ),
    "kubernetes_audit_hostpath_mount": (
        {"verb": "create", "objectRef": _ref("pods"), "requestObject": _HOSTPATH_POD},
        {"verb": "create", "objectRef": _ref("pods"), "requestObject": _PLAIN_POD},
    ),
    "kubernetes_audit_pod_in_system_namespace": (
        {"verb": "create", "objectRef": _ref("pods", namespace="kube-system")},
        {"verb": "create", "objectRef": _ref("pods", namespace="kube-public")},
    ),
    "kubernetes_audit_potential_enumeration_activity": (
        {
            "verb": "create",
            "objectRef": _ref("pods", sub="exec"),
            "requestURI": "/api/v1/namespaces/default/pods/x/exec?command=%2Fbin%2Fsh&stdin=true&tty=true",
        },
        {
            "verb": "create",
            "objectRef": _ref("pods", sub="exec"),
            "requestURI": "/api/v1/namespaces/default/pods/x/exec?command=%2Fbin%2Fsh&stdin=true&tty=true",
            "annotations": _FORBID,
            "responseStatus": {"metadata": {}, "code": 403},
        },
    ),
    "kubernetes_audit_privileged_pod_creation": (
        {"verb": "create", "objectRef": _ref("pods"), "requestObject": _CAP_POD},
        {"verb": "create", "objectRef": _ref("pods"), "requestObject": _DROP_POD},
    ),
    "kubernetes_audit_rbac_permisions_listing": (
        {"verb": "create", "objectRef": _ref("selfsubjectrulesreviews", namespace="", group="authorization.k8s.io")},
        {"verb": "create", "objectRef": _ref("selfsubjectaccessreviews", namespace="", group="authorization.k8s.io")},
    ),
    "kubernetes_audit_rolebinding_modification": (
        {"verb": "update", "objectRef": _ref("clusterrolebindings", namespace="", group="rbac.authorization.k8s.io")},
        {"verb": "update", "objectRef": _ref("clusterroles", namespace="", group="rbac.authorization.k8s.io")},
    ),
    "kubernetes_audit_secrets_enumeration": (
        {"verb": "list", "objectRef": _ref("secrets")},
        {"verb": "get", "objectRef": _ref("secrets")},
    ),
    "kubernetes_audit_secrets_modified_or_deleted": (
        {"verb": "delete", "objectRef": _ref("secrets")},
        {"verb": "watch", "objectRef": _ref("secrets")},
    ),
    "kubernetes_audit_serviceaccount_creation": (
        {"verb": "create", "objectRef": _ref("serviceaccounts")},
        {"verb": "delete", "objectRef": _ref("serviceaccounts")},
    ),
    "kubernetes_audit_sidecar_injection": (
        {"verb": "patch", "objectRef": _ref("deployments", group="apps")},
        {"verb": "patch", "objectRef": _ref("daemonsets", group="apps")},
    ),
    "kubernetes_audit_unauthorized_unauthenticated_actions": (
        {"responseStatus": {"metadata": {}, "code": 403}, "annotations": _FORBID},
        {"responseStatus": {"metadata": {}, "code": 404}},
    ),
}


def _load(path: Path) -> SigmaRules:
    return load_sigma([RuleSource(str(path), path.read_text(encoding="utf-8"))])


def _engine(path: Path) -> Engine:
    return Engine(load_ruleset([RuleSource(str(path), path.read_text(encoding="utf-8"))]))


def test_every_corpus_rule_loads_and_has_cases(corpus: Path) -> None:
    files = sorted((corpus / "sigma").glob("*.yml"))
    assert len(files) == 16
    rules = load_sigma([RuleSource(str(path), path.read_text(encoding="utf-8")) for path in files])
    assert len(rules.rules) == 16
    assert not rules.correlations
    assert {path.stem for path in files} == set(CASES)


@pytest.mark.parametrize("stem", sorted(CASES))
def test_rule_matches_positive_not_negative(corpus: Path, stem: str) -> None:
    (rule,) = _load(corpus / "sigma" / f"{stem}.yml").rules
    detector = _engine(corpus / "sigma" / f"{stem}.yml")
    positive, negative = CASES[stem]
    alerts = detector.detect(context(**positive))
    assert [alert.rule for alert in alerts] == [rule.title]
    assert detector.detect(context(**negative)) == []


def test_exec_rule_alert_carries_level_tags_and_mitre(corpus: Path) -> None:
    engine = _engine(corpus / "sigma" / "kubernetes_audit_exec_into_container.yml")
    (alert,) = engine.detect(context(**CASES["kubernetes_audit_exec_into_container"][0]))
    assert alert.priority is Priority.WARNING  # level: medium
    assert "attack.t1609" in alert.tags
    assert "T1609" in alert.mitre
    assert alert.output_fields["ka.target.subresource"] == "exec"
    assert alert.output_fields["sigma.id"] == "a1b0ca4e-7835-413e-8471-3ff2b8a66be6"


def test_sub_technique_tags_become_dotted_ids(corpus: Path) -> None:
    (rule,) = _load(corpus / "sigma" / "kubernetes_audit_secrets_enumeration.yml").rules
    assert rule.mitre == ("T1552.007",)
    assert rule.priority is Priority.NOTICE  # level: low


def test_mapped_fields_are_announced(corpus: Path) -> None:
    rules = _load(corpus / "sigma" / "kubernetes_audit_rbac_permisions_listing.yml")
    (notice,) = rules.notices
    assert "apiGroup" in str(notice) and "objectRef.apiGroup" in str(notice)
    assert "kubernetes_audit_rbac_permisions_listing.yml" in str(notice)


def test_hostpath_rule_sees_pod_templates_and_not_missing_bodies(corpus: Path) -> None:
    detector = _engine(corpus / "sigma" / "kubernetes_audit_hostpath_mount.yml")
    assert detector.detect(context(verb="create", objectRef=_ref("pods"))) == []
