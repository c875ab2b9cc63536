"""Loading RBAC manifests: multi-document YAML, List kinds, errors that name the document and field."""

from __future__ import annotations

import pytest

from kubetrail.rbac import RbacError, Rule, parse_manifests


def test_multi_document_and_list_kinds() -> None:
    text = """
kind: ClusterRole
apiVersion: rbac.authorization.k8s.io/v1
metadata: {name: a}
rules: [{apiGroups: [""], resources: [pods], verbs: [get], resourceNames: [p1]}]
---
kind: RoleList
apiVersion: rbac.authorization.k8s.io/v1
items:
- kind: Role
  apiVersion: rbac.authorization.k8s.io/v1
  metadata: {name: b, namespace: x}
  rules: [{apiGroups: [apps], resources: [deployments/scale], verbs: [update]}]
"""
    rbac = parse_manifests(text, "r.yaml")
    assert rbac.role("ClusterRole", "", "a") is not None
    role = rbac.role("Role", "x", "b")
    assert role is not None
    assert role.rules == (Rule(verbs=("update",), api_groups=("apps",), resources=("deployments/scale",)),)


def test_bad_rule_field_is_named() -> None:
    text = "kind: Role\nmetadata: {name: r, namespace: n}\nrules: [{verbs: get}]\n"
    with pytest.raises(RbacError, match=r"r.yaml: rules\[0\]\.verbs: must be a list of strings"):
        parse_manifests(text, "r.yaml")


def test_invalid_yaml_gives_the_line() -> None:
    with pytest.raises(RbacError) as caught:
        parse_manifests("kind: Role\nmetadata: [\n", "r.yaml")
    assert caught.value.line is not None
