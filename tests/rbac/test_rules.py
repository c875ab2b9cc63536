"""`rule_allows` against the RBAC authorizer's documented matching (pkg/apis/rbac/v1/evaluation_helpers.go)."""

from __future__ import annotations

import pytest

from kubetrail.rbac import Request, Rule, rule_allows

PODS_READ = Rule(verbs=("get", "list"), api_groups=("",), resources=("pods",))
EVERYTHING = Rule(verbs=("*",), api_groups=("*",), resources=("*",))
EXEC = Rule(verbs=("create",), api_groups=("",), resources=("pods/exec",))
ANY_SCALE = Rule(verbs=("update",), api_groups=("apps",), resources=("*/scale",))
PODS_STAR = Rule(verbs=("get",), api_groups=("",), resources=("pods/*",))
NAMED = Rule(verbs=("get", "update"), api_groups=("",), resources=("configmaps",), resource_names=("app-config",))
HEALTH = Rule(verbs=("get",), non_resource_urls=("/healthz", "/healthz/*"))
ALL_URLS = Rule(verbs=("*",), non_resource_urls=("*",))
APPS = Rule(verbs=("get",), api_groups=("apps",), resources=("deployments",))

CASES = [
    ("listed verb and resource", PODS_READ, Request("list", "", "pods", namespace="ns"), True),
    ("verb not listed", PODS_READ, Request("delete", "", "pods", namespace="ns", name="p"), False),
    ("resource not listed", PODS_READ, Request("get", "", "secrets", namespace="ns", name="s"), False),
    ("group must match", PODS_READ, Request("get", "apps", "pods", namespace="ns", name="p"), False),
    ("resource rule does not grant a subresource", PODS_READ, Request("get", "", "pods", "log", "ns", "p"), False),
    ("subresource named exactly", EXEC, Request("create", "", "pods", "exec", "ns", "p"), True),
    ("subresource rule does not grant the parent", EXEC, Request("create", "", "pods", "", "ns"), False),
    (
        "*/scale matches any resource's scale",
        ANY_SCALE,
        Request("update", "apps", "deployments", "scale", "n", "d"),
        True,
    ),
    (
        "*/scale matches statefulsets/scale",
        ANY_SCALE,
        Request("update", "apps", "statefulsets", "scale", "n", "s"),
        True,
    ),
    ("*/scale does not match the resource", ANY_SCALE, Request("update", "apps", "deployments", "", "n", "d"), False),
    ("pods/* is not a wildcard", PODS_STAR, Request("get", "", "pods", "log", "ns", "p"), False),
    ("* matches everything", EVERYTHING, Request("deletecollection", "batch", "jobs", namespace="ns"), True),
    ("* resource matches subresources", EVERYTHING, Request("create", "", "pods", "exec", "ns", "p"), True),
    ("resource rules never match URLs", EVERYTHING, Request("get", path="/healthz"), False),
    (
        "resourceNames contains the name",
        NAMED,
        Request("get", "", "configmaps", namespace="ns", name="app-config"),
        True,
    ),
    ("resourceNames lacks the name", NAMED, Request("get", "", "configmaps", namespace="ns", name="other"), False),
    ("resourceNames never grant unnamed list", NAMED, Request("list", "", "configmaps", namespace="ns"), False),
    ("exact URL", HEALTH, Request("get", path="/healthz"), True),
    ("URL prefix with trailing *", HEALTH, Request("get", path="/healthz/etcd"), True),
    ("URL prefix is literal", HEALTH, Request("get", path="/healthzx"), False),
    ("URL verb must match", HEALTH, Request("post", path="/healthz"), False),
    ("* URL matches any path", ALL_URLS, Request("get", path="/metrics"), True),
    ("URL rules never match resources", ALL_URLS, Request("get", "", "pods", namespace="ns"), False),
    ("named group", APPS, Request("get", "apps", "deployments", namespace="n", name="d"), True),
    ("core group is the empty string", APPS, Request("get", "", "deployments", namespace="n", name="d"), False),
]


@pytest.mark.parametrize(
    ("rule", "request_", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_rule_allows(rule: Rule, request_: Request, expected: bool) -> None:
    assert rule_allows(rule, request_) is expected
