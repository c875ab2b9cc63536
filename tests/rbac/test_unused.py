"""Granted-but-unused permissions: binding scope, subjects (users, groups, service accounts), wildcards."""

from __future__ import annotations

from kubetrail.rbac import Identity, Observed, Request, aggregate, find_unused, parse_manifests

MANIFESTS = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: app-reader, namespace: shop}
rules:
- apiGroups: [""]
  resources: ["configmaps", "secrets"]
  verbs: ["get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: cart-reads, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: app-reader}
subjects:
- {kind: ServiceAccount, name: cart}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: everyone-discovery}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: discovery}
subjects:
- {kind: Group, name: "system:authenticated", apiGroup: rbac.authorization.k8s.io}
---
apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: discovery}
  rules:
  - nonResourceURLs: ["/api", "/apis/*", "/version"]
    verbs: ["get"]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: ops}
  aggregationRule:
    clusterRoleSelectors:
    - matchLabels: {rbac.example.com/aggregate-to-ops: "true"}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata:
    name: ops-deployments
    labels: {rbac.example.com/aggregate-to-ops: "true"}
  rules:
  - apiGroups: ["apps"]
    resources: ["*"]
    verbs: ["*"]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: jane-ops, namespace: prod}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ops}
  subjects:
  - {kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: ignored}
"""

CART = "system:serviceaccount:shop:cart"
IDENTITIES = [
    Identity(CART, frozenset({"system:serviceaccounts", "system:serviceaccounts:shop", "system:authenticated"})),
    Identity("jane", frozenset({"system:authenticated"})),
]


def _seen(user: str, request: Request, allowed: bool = True) -> Observed:
    item = Observed(request)
    item.add(allowed, "2026-03-19T10:00:00.000000Z", user)
    return item


def _report(observed: list[Observed]) -> set[tuple[str, str, str, str, str]]:
    rbac = parse_manifests(MANIFESTS, "rbac.yaml")
    aggregate(rbac)
    report = find_unused(rbac, observed, IDENTITIES)
    return {(item.subject, item.namespace, item.verb, item.resource, item.url) for item in report.unused}


def test_role_binding_grants_only_in_its_namespace() -> None:
    observed = [
        _seen(CART, Request("get", "", "secrets", namespace="shop", name="db")),
        _seen(CART, Request("list", "", "configmaps", namespace="other")),  # outside the binding: not a use
    ]
    unused = _report(observed)
    cart = {item for item in unused if item[0] == "ServiceAccount shop/cart"}
    assert cart == {
        ("ServiceAccount shop/cart", "shop", "list", "secrets", ""),
        ("ServiceAccount shop/cart", "shop", "get", "configmaps", ""),
        ("ServiceAccount shop/cart", "shop", "list", "configmaps", ""),
    }


def test_group_subject_applies_to_members_and_url_prefix_matches() -> None:
    observed = [_seen("jane", Request("get", path="/apis/apps/v1")), _seen(CART, Request("get", path="/api"))]
    unused = _report(observed)
    group = {item for item in unused if item[0] == "Group system:authenticated"}
    assert group == {("Group system:authenticated", "*", "get", "", "/version")}


def test_aggregated_cluster_role_wildcards_count_as_used_by_any_match() -> None:
    rbac = parse_manifests(MANIFESTS, "rbac.yaml")
    aggregate(rbac)
    assert any("ClusterRole ops is aggregated" in note and "ops-deployments" in note for note in rbac.notes)
    used = [_seen("jane", Request("patch", "apps", "deployments", "scale", "prod", "web"))]
    assert ("User jane", "prod", "*", "*", "") not in _report(used)
    elsewhere = [_seen("jane", Request("patch", "apps", "deployments", "", "dev", "web"))]
    assert ("User jane", "prod", "*", "*", "") in _report(elsewhere)


def test_denied_requests_are_not_uses() -> None:
    observed = [_seen(CART, Request("get", "", "secrets", namespace="shop", name="db"), allowed=False)]
    assert ("ServiceAccount shop/cart", "shop", "get", "secrets", "") in _report(observed)


def test_service_account_subject_defaults_to_binding_namespace() -> None:
    rbac = parse_manifests(MANIFESTS, "rbac.yaml")
    binding = next(item for item in rbac.bindings if item.name == "cart-reads")
    assert binding.subjects[0].namespace == "shop"
