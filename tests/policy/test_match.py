"""The policy checker's selector semantics, one table per selector (Kubernetes auditing docs, apiserver checker)."""

from __future__ import annotations

import pytest

from kubetrail.model.policy import GroupResources, PolicyRule
from kubetrail.policy.attributes import RequestAttributes
from kubetrail.policy.match import (
    group_matches,
    group_resources_match,
    path_matches,
    resource_matches,
    rule_matches,
    target_matches,
    user_matches,
    verb_matches,
)

JANE = RequestAttributes(user="jane", groups=("dev", "system:authenticated"), verb="get", resource="pods")


@pytest.mark.parametrize(
    ("path", "spec", "expected"),
    [
        ("/healthz", "/healthz", True),
        ("/healthz/etcd", "/healthz", False),  # exact entries do not cover sub-paths
        ("/healthz/etcd", "/healthz*", True),
        ("/healthz", "/healthz*", True),
        ("/healthzzz", "/healthz*", True),  # a plain string prefix, not a path-segment prefix
        ("/livez", "/healthz*", False),
        ("/metrics", "*", True),
        ("", "*", True),
        ("/api/v1", "/api*", True),
        ("/apis", "/api*", True),
        ("/api", "/api/*", False),  # the prefix "/api/" is longer than the path
        ("/api/v1", "/api/*", True),
        ("/version", "/version/", False),
        ("/logs/kubelet.log", "/logs**", True),  # every trailing star is trimmed before the prefix test
        ("/openapi/v2", "/openapi", False),
    ],
)
def test_path_matches(path: str, spec: str, expected: bool) -> None:
    assert path_matches(path, spec) is expected


@pytest.mark.parametrize(
    ("resource", "subresource", "spec", "expected"),
    [
        ("pods", "", "pods", True),
        ("pods", "log", "pods", False),  # a subresource request needs "pods/log"
        ("pods", "log", "pods/log", True),
        ("pods", "exec", "pods/log", False),
        ("pods", "exec", "pods/*", True),
        ("pods", "", "pods/*", True),  # "resource/*" also covers the resource itself
        ("services", "proxy", "pods/*", False),
        ("pods", "status", "*/status", True),
        ("deployments", "status", "*/status", True),
        ("deployments", "", "*/status", False),
        ("deployments", "scale", "*/status", False),
        ("pods", "", "*", True),
        ("pods", "exec", "*", True),  # "*" covers subresources too
        ("pods", "exec", "*/*", False),  # "*/*" is not a wildcard form the checker knows
        ("pods", "", "Pods", False),  # names are case-sensitive
        ("pods", "", "pod", False),
    ],
)
def test_resource_matches(resource: str, subresource: str, spec: str, expected: bool) -> None:
    assert resource_matches(resource, subresource, spec) is expected


def _request(**fields: object) -> RequestAttributes:
    base: dict[str, object] = {"user": "jane", "verb": "get", "namespace": "default", "resource": "pods"}
    base.update(fields)
    return RequestAttributes(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("entry", "request_fields", "expected"),
    [
        (GroupResources(group="", resources=["pods"]), {}, True),
        (GroupResources(group="apps", resources=["pods"]), {}, False),  # group compared first, exactly
        (
            GroupResources(group="apps", resources=["deployments"]),
            {"api_group": "apps", "resource": "deployments"},
            True,
        ),
        (GroupResources(group="", resources=["deployments"]), {"api_group": "apps", "resource": "deployments"}, False),
        (GroupResources(group="*", resources=["*"]), {"api_group": "apps", "resource": "deployments"}, True),
        (GroupResources(group=""), {"resource": "configmaps"}, True),  # no resources: the whole group
        (GroupResources(group="rbac.authorization.k8s.io"), {"api_group": "rbac.authorization.k8s.io"}, True),
        (GroupResources(group="", resources=["configmaps"], resourceNames=["cfg"]), {"resource": "configmaps"}, False),
        (
            GroupResources(group="", resources=["configmaps"], resourceNames=["cfg"]),
            {"resource": "configmaps", "name": "cfg"},
            True,
        ),
        (
            GroupResources(group="", resources=["configmaps"], resourceNames=["cfg"]),
            {"resource": "configmaps", "name": "other"},
            False,
        ),
        (
            GroupResources(group="", resources=["pods/*"], resourceNames=["web"]),
            {"name": "web", "subresource": "exec"},
            True,
        ),
    ],
)
def test_group_resources_match(entry: GroupResources, request_fields: dict[str, object], expected: bool) -> None:
    assert group_resources_match(entry, _request(**request_fields)) is expected


# Kubernetes 1.36 (kubernetes/kubernetes#135262): a resources entry with `group: "*"` matches every API group,
# the core group ("") included; the entry's resources and resourceNames still have to match.
ALL_GROUPS_CASES = [
    pytest.param(GroupResources(group="*", resources=["pods"]), {}, True, id="core-pods"),
    pytest.param(
        GroupResources(group="*", resources=["deployments"]),
        {"api_group": "apps", "resource": "deployments"},
        True,
        id="apps-deployments",
    ),
    pytest.param(
        GroupResources(group="*", resources=["pods", "deployments"]),
        {"api_group": "apps", "resource": "deployments"},
        True,
        id="apps-deployments-second-spec",
    ),
    pytest.param(GroupResources(group="*"), {"resource": "configmaps"}, True, id="whole-core-group"),
    pytest.param(
        GroupResources(group="*"),
        {"api_group": "rbac.authorization.k8s.io", "resource": "clusterroles"},
        True,
        id="whole-rbac-group",
    ),
    pytest.param(
        GroupResources(group="*"),
        {"api_group": "widgets.example.com", "resource": "widgets"},
        True,
        id="custom-resource-group",
    ),
    pytest.param(GroupResources(group="*", resources=["*/status"]), {"subresource": "status"}, True, id="pods-status"),
    pytest.param(
        GroupResources(group="*", resources=["*/status"]),
        {"api_group": "apps", "resource": "deployments", "subresource": "status"},
        True,
        id="deployments-status",
    ),
    pytest.param(
        GroupResources(group="*", resources=["*/status"]),
        {"api_group": "apps", "resource": "deployments"},
        False,
        id="status-spec-not-main-resource",
    ),
    pytest.param(
        GroupResources(group="*", resources=["pods"]),
        {"api_group": "apps", "resource": "deployments"},
        False,
        id="resource-still-compared",
    ),
    pytest.param(GroupResources(group="*", resources=["pods"]), {"subresource": "exec"}, False, id="pods-not-exec"),
    pytest.param(
        GroupResources(group="*", resources=["secrets"], resourceNames=["tls"]),
        {"resource": "secrets", "name": "other"},
        False,
        id="names-still-compared",
    ),
    pytest.param(
        GroupResources(group="*", resources=["secrets"], resourceNames=["tls"]),
        {"resource": "secrets", "name": "tls"},
        True,
        id="named-secret",
    ),
]


@pytest.mark.parametrize(("entry", "request_fields", "expected"), ALL_GROUPS_CASES)
def test_all_groups_entry(entry: GroupResources, request_fields: dict[str, object], expected: bool) -> None:
    assert group_resources_match(entry, _request(**request_fields)) is expected


@pytest.mark.parametrize(
    ("spec", "api_group", "expected"),
    [
        ("*", "", True),
        ("*", "apps", True),
        ("", "", True),
        ("", "apps", False),  # "" is the core group only, not "any group"
        ("apps", "", False),
        ("apps", "apps", True),
        ("*.k8s.io", "rbac.authorization.k8s.io", False),  # only a lone "*" is a wildcard
        ("apps*", "apps", False),
    ],
)
def test_group_matches(spec: str, api_group: str, expected: bool) -> None:
    assert group_matches(spec, api_group) is expected


def test_all_groups_rule_matches_core_pods_and_apps_deployments() -> None:
    rule = PolicyRule(level="RequestResponse", resources=[GroupResources(group="*", resources=["pods", "deployments"])])
    assert rule_matches(rule, POD)
    assert rule_matches(rule, _request(api_group="apps", resource="deployments", namespace="prod"))
    assert not rule_matches(rule, _request(resource="secrets"))
    assert not rule_matches(rule, HEALTHZ)  # a resource rule never matches a non-resource request


@pytest.mark.parametrize(
    ("users", "groups", "expected"),
    [
        ([], [], True),
        (["jane"], [], True),
        (["bob", "jane"], [], True),
        (["bob"], [], False),
        (["Jane"], [], False),
        ([], ["dev"], True),
        ([], ["ops", "system:authenticated"], True),  # any one of the user's groups is enough
        ([], ["ops"], False),
        (["jane"], ["ops"], False),  # both selectors must hold
        (["jane"], ["dev"], True),
        (["system:serviceaccounts"], [], False),  # a group name in users is a user name
    ],
)
def test_user_matches(users: list[str], groups: list[str], expected: bool) -> None:
    rule = PolicyRule(level="Metadata", users=users, userGroups=groups)
    assert user_matches(rule, JANE) is expected


def test_user_without_groups_fails_group_rule() -> None:
    rule = PolicyRule(level="Metadata", userGroups=["system:unauthenticated"])
    assert not user_matches(rule, RequestAttributes(verb="get"))


@pytest.mark.parametrize(
    ("verbs", "verb", "expected"),
    [
        ([], "get", True),
        (["get", "list"], "get", True),
        (["create", "update"], "get", False),
        (["*"], "get", False),  # verbs are compared as strings: no wildcard
        (["GET"], "get", False),
        (["watch"], "watch", True),
    ],
)
def test_verb_matches(verbs: list[str], verb: str, expected: bool) -> None:
    assert verb_matches(PolicyRule(level="None", verbs=verbs), RequestAttributes(verb=verb)) is expected


HEALTHZ = RequestAttributes(user="kubelet", verb="get", is_resource_request=False, path="/healthz")
NODE = RequestAttributes(user="admin", verb="get", resource="nodes", name="node-1")  # cluster-scoped
POD = RequestAttributes(user="admin", verb="get", namespace="kube-system", resource="pods", name="dns")


@pytest.mark.parametrize(
    ("rule", "attrs", "expected"),
    [
        (PolicyRule(level="None", namespaces=["kube-system"]), POD, True),
        (PolicyRule(level="None", namespaces=["default"]), POD, False),
        (PolicyRule(level="None", namespaces=[""]), NODE, True),  # "" selects cluster-scoped requests
        (PolicyRule(level="None", namespaces=[""]), POD, False),
        (PolicyRule(level="None", namespaces=["kube-system"]), NODE, False),
        (PolicyRule(level="None", namespaces=["kube-system"]), HEALTHZ, False),  # never a non-resource request
        (PolicyRule(level="None", resources=[GroupResources()]), HEALTHZ, False),
        (PolicyRule(level="None", resources=[GroupResources(resources=["*"])]), HEALTHZ, False),
        (PolicyRule(level="None", nonResourceURLs=["*"]), POD, False),  # URL rules never match resource requests
        (PolicyRule(level="None", nonResourceURLs=["*"]), HEALTHZ, True),
        (PolicyRule(level="None", nonResourceURLs=["/metrics", "/healthz"]), HEALTHZ, True),
        (PolicyRule(level="None", nonResourceURLs=["/metrics"]), HEALTHZ, False),
        (PolicyRule(level="None"), HEALTHZ, True),  # no target selector: both kinds
        (PolicyRule(level="None"), POD, True),
        (
            PolicyRule(level="None", namespaces=["kube-system"], resources=[GroupResources(resources=["configmaps"])]),
            POD,
            False,
        ),
        (
            PolicyRule(
                level="None",
                resources=[GroupResources(group="apps", resources=["pods"]), GroupResources(resources=["pods"])],
            ),
            POD,
            True,  # any entry may match
        ),
    ],
)
def test_target_matches(rule: PolicyRule, attrs: RequestAttributes, expected: bool) -> None:
    assert target_matches(rule, attrs) is expected


def test_rule_matches_requires_every_selector() -> None:
    rule = PolicyRule(
        level="Request",
        users=["admin"],
        verbs=["get"],
        namespaces=["kube-system"],
        resources=[GroupResources(resources=["pods"], resourceNames=["dns"])],
    )
    assert rule_matches(rule, POD)
    for changed in (
        RequestAttributes(user="bob", verb="get", namespace="kube-system", resource="pods", name="dns"),
        RequestAttributes(user="admin", verb="list", namespace="kube-system", resource="pods", name="dns"),
        RequestAttributes(user="admin", verb="get", namespace="default", resource="pods", name="dns"),
        RequestAttributes(user="admin", verb="get", namespace="kube-system", resource="services", name="dns"),
        RequestAttributes(user="admin", verb="get", namespace="kube-system", resource="pods", name="web"),
    ):
        assert not rule_matches(rule, changed), changed
