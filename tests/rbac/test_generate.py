"""Generated roles grant every observed request and nothing removable: checked with `rule_allows`."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from kubetrail.intake import read_events
from kubetrail.model import Event
from kubetrail.rbac import CLUSTER, Generated, GenerateOptions, Request, Subject, generate, observe, render
from kubetrail.rbac.generate import RuleNote


@functools.cache
def _events(path: Path) -> list[Event]:
    return list(read_events(path))


def _weakened(generated: Generated) -> Iterator[tuple[str, Generated]]:
    """Every copy of the output with one verb taken out of one rule (the rule dropped when it was its only verb)."""
    for scope, notes in generated.scopes.items():
        for index, note in enumerate(notes):
            for verb in note.rule.verbs:
                verbs = tuple(item for item in note.rule.verbs if item != verb)
                changed: list[RuleNote] = list(notes)
                if verbs:
                    changed[index] = replace(note, rule=replace(note.rule, verbs=verbs))
                else:
                    del changed[index]
                copy = Generated(generated.subject, {**generated.scopes, scope: changed}, generated.requests)
                yield f"{scope or 'cluster'} rule {index} without {verb}", copy


def _check_exact(generated: Generated) -> None:
    requests = [item.request for item in generated.requests]
    assert requests, "nothing observed"
    for request in requests:
        assert generated.allows(request), request
    for label, weaker in _weakened(generated):
        assert not all(weaker.allows(request) for request in requests), f"{label} is not needed"


def _rules(documents: list[dict[str, object]], kind: str, namespace: str = "") -> list[dict[str, object]]:
    for document in documents:
        metadata = document["metadata"]
        assert isinstance(metadata, dict)
        if document["kind"] == kind and metadata.get("namespace", "") == namespace:
            rules = document["rules"]
            assert isinstance(rules, list)
            return rules
    raise AssertionError(f"no {kind} in {namespace!r}")


def test_audit2rbac_demo_alice_gets_one_role_in_ns1(corpus: Path) -> None:
    events = _events(corpus / "audit2rbac" / "demo.log")
    subject = Subject("User", "alice")
    generated = generate(subject, observe(events, frozenset({"alice"})).values(), GenerateOptions(include_denied=True))
    documents = list(yaml.safe_load_all(render(generated)))
    assert [(doc["kind"], doc["metadata"].get("namespace")) for doc in documents] == [
        ("Role", "ns1"),
        ("RoleBinding", "ns1"),
    ]
    assert _rules(documents, "Role", "ns1") == [
        {"apiGroups": [""], "resources": ["configmaps", "pods", "secrets"], "verbs": ["list"]}
    ]
    binding = documents[1]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kubetrail:alice"}
    assert binding["subjects"] == [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]
    _check_exact(generated)


def test_audit2rbac_demo_alice_was_only_denied(corpus: Path) -> None:
    events = _events(corpus / "audit2rbac" / "demo.log")
    generated = generate(Subject("User", "alice"), observe(events, frozenset({"alice"})).values())
    assert generated.scopes == {}
    assert "nothing to grant" in render(generated)


def test_audit2rbac_demo_bob_discovery_urls_and_pods(corpus: Path) -> None:
    events = _events(corpus / "audit2rbac" / "demo.log")
    generated = generate(Subject("User", "bob"), observe(events, frozenset({"bob"})).values())
    documents = list(yaml.safe_load_all(render(generated)))
    cluster = _rules(documents, "ClusterRole")
    assert len(cluster) == 1 and cluster[0]["verbs"] == ["get"]
    urls = cluster[0]["nonResourceURLs"]
    assert isinstance(urls, list) and {"/api", "/apis", "/api/v1", "/apis/apps/v1beta2"} <= set(urls)
    # Only the allowed pods list in `default`; the denied ones in ns1 and on nodes are left out.
    assert _rules(documents, "Role", "default") == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]
    assert all(doc["metadata"].get("namespace") != "ns1" for doc in documents)
    _check_exact(generated)


def test_audit2rbac_demo_service_account_cluster_list_covers_namespace(corpus: Path) -> None:
    events = _events(corpus / "audit2rbac" / "demo.log")
    name = "system:serviceaccount:ns1:sa1"
    generated = generate(
        Subject.from_username(name), observe(events, frozenset({name})).values(), GenerateOptions(include_denied=True)
    )
    documents = list(yaml.safe_load_all(render(generated)))
    assert [doc["kind"] for doc in documents] == ["ClusterRole", "ClusterRoleBinding"]
    assert _rules(documents, "ClusterRole") == [{"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["list"]}]
    assert documents[1]["subjects"] == [{"kind": "ServiceAccount", "name": "sa1", "namespace": "ns1"}]
    _check_exact(generated)


SUBJECTS = [
    "system:serviceaccount:kube-system:deployment-controller",
    "system:serviceaccount:ci:deployer",
    "system:serviceaccount:shop:cart",
    "system:serviceaccount:kube-system:coredns",
    "system:node:worker-1",
    "system:kube-scheduler",
    "bob@example.com",
    "dev-intern@example.com",
]


@pytest.mark.parametrize("resource_names", [False, True], ids=["resources", "resource-names"])
@pytest.mark.parametrize("username", SUBJECTS)
def test_generated_log_roles_are_exact(generated_log: Path, username: str, resource_names: bool) -> None:
    events = _events(generated_log)
    observed = observe(events, frozenset({username})).values()
    options = GenerateOptions(resource_names=resource_names, include_denied=True)
    generated = generate(Subject.from_username(username), observed, options)
    _check_exact(generated)
    text = render(generated)
    assert render(generate(Subject.from_username(username), observed, options)) == text  # deterministic
    for document in yaml.safe_load_all(text):
        assert document["metadata"]["name"] == "kubetrail:" + username


def test_denied_requests_are_left_out_unless_asked(generated_log: Path) -> None:
    events = _events(generated_log)
    username = "dev-intern@example.com"
    observed = list(observe(events, frozenset({username})).values())
    denied = [item.request for item in observed if item.denied and not item.allowed]
    assert denied, "the generated log has denied requests for this user"
    strict = generate(Subject.from_username(username), observed)
    assert not any(strict.allows(request) for request in denied)
    loose = generate(Subject.from_username(username), observed, GenerateOptions(include_denied=True))
    assert all(loose.allows(request) for request in denied)


def test_namespace_option_keeps_one_role(generated_log: Path) -> None:
    events = _events(generated_log)
    username = "system:serviceaccount:ci:deployer"
    observed = observe(events, frozenset({username})).values()
    full = generate(Subject.from_username(username), observed)
    namespaces = [scope for scope in full.scopes if scope != CLUSTER]
    assert namespaces
    only = generate(Subject.from_username(username), observed, GenerateOptions(namespace=namespaces[0]))
    assert list(only.scopes) == [namespaces[0]]


def test_resource_names_grant_only_named_objects() -> None:
    from kubetrail.rbac.observed import Observed

    seen = Observed(Request("get", "", "configmaps", namespace="app", name="settings"))
    seen.add(True, "2026-03-19T10:00:00.000000Z", "u")
    generated = generate(Subject("User", "u"), [seen], GenerateOptions(resource_names=True))
    assert generated.allows(Request("get", "", "configmaps", namespace="app", name="settings"))
    assert not generated.allows(Request("get", "", "configmaps", namespace="app", name="other"))
    assert not generated.allows(Request("get", "", "configmaps", namespace="other", name="settings"))


def test_audit2rbac_demo_impersonator_needs_impersonate(corpus: Path) -> None:
    """system:admin made every demo request as bob, alice or ns1:sa1: it needs `impersonate` on them."""
    events = _events(corpus / "audit2rbac" / "demo.log")
    observed = observe(events, frozenset({"system:admin"})).values()
    generated = generate(Subject("User", "system:admin"), observed, GenerateOptions(resource_names=True))
    documents = list(yaml.safe_load_all(render(generated)))
    assert _rules(documents, "ClusterRole") == [
        {"apiGroups": [""], "resources": ["users"], "resourceNames": ["alice", "bob"], "verbs": ["impersonate"]}
    ]
    assert _rules(documents, "Role", "ns1") == [
        {"apiGroups": [""], "resources": ["serviceaccounts"], "resourceNames": ["sa1"], "verbs": ["impersonate"]}
    ]
    _check_exact(generated)


def test_impersonated_groups_extras_and_uid_are_checked() -> None:
    from kubetrail.model import Event, Stage, UserInfo
    from kubetrail.rbac.observed import impersonation_requests

    event = Event(
        level="Metadata",
        auditID="a",
        stage=Stage.RESPONSE_COMPLETE,
        requestURI="/api/v1/namespaces/x/pods",
        verb="list",
        user=UserInfo(username="admin"),
        impersonatedUser=UserInfo(
            username="jane",
            uid="1234",
            groups=["developers", "system:authenticated"],
            extra={"scopes": ["view", "edit"]},
        ),
    )
    assert impersonation_requests(event) == [
        Request("impersonate", "", "users", name="jane"),
        Request("impersonate", "", "groups", name="developers"),
        Request("impersonate", "authentication.k8s.io", "userextras", "scopes", name="view"),
        Request("impersonate", "authentication.k8s.io", "userextras", "scopes", name="edit"),
        Request("impersonate", "authentication.k8s.io", "uids", name="1234"),
    ]
