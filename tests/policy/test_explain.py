"""Explanations: the decision matches the evaluator, and each rule's reasons say which selector decided."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubetrail.model.event import Level
from kubetrail.model.policy import GroupResources, Policy, PolicyRule
from kubetrail.policy.attributes import RequestAttributes
from kubetrail.policy.evaluate import evaluate
from kubetrail.policy.explain import explain, explain_rule
from kubetrail.policy.load import load_policy_bytes
from kubetrail.policy.match import rule_matches
from tests.policy.test_evaluate import policies, requests

JANE_GET_POD = RequestAttributes(
    user="jane", groups=("dev",), verb="get", namespace="prod", resource="pods", name="web"
)
EXEC = RequestAttributes(user="jane", verb="create", namespace="prod", resource="pods", subresource="exec", name="web")
HEALTHZ = RequestAttributes(user="kubelet", verb="get", is_resource_request=False, path="/healthz/etcd")


def _reasons(rule: PolicyRule, attrs: RequestAttributes) -> list[str]:
    return explain_rule(0, rule, attrs).reasons


@pytest.mark.parametrize(
    ("rule", "attrs", "reason"),
    [
        (
            PolicyRule(level="None", verbs=["create", "update"]),
            JANE_GET_POD,
            'verbs [create update] does not include "get"',
        ),
        (PolicyRule(level="None", users=["bob"]), JANE_GET_POD, 'users [bob] does not include "jane"'),
        (
            PolicyRule(level="None", userGroups=["system:nodes"]),
            JANE_GET_POD,
            "userGroups [system:nodes] includes none of the user's groups [dev]",
        ),
        (
            PolicyRule(level="None", resources=[GroupResources(group="apps", resources=["deployments"])]),
            JANE_GET_POD,
            'resources[0]: group "apps" ≠ request group ""',
        ),
        (
            PolicyRule(level="None", resources=[GroupResources(resources=["pods"])]),
            EXEC,
            'resources[0]: [pods] does not include "pods/exec"',
        ),
        (
            PolicyRule(level="None", resources=[GroupResources(resources=["pods"], resourceNames=["db"])]),
            JANE_GET_POD,
            'resources[0]: resourceNames [db] does not include "web"',
        ),
        (
            PolicyRule(level="None", resources=[GroupResources(resources=["secrets"])]),
            HEALTHZ,
            'resource rules never match non-resource requests (path "/healthz/etcd")',
        ),
        (
            PolicyRule(level="None", nonResourceURLs=["/healthz*"]),
            JANE_GET_POD,
            'nonResourceURLs rules never match resource requests ("pods")',
        ),
        (
            PolicyRule(level="None", nonResourceURLs=["/metrics", "/healthz"]),
            HEALTHZ,
            'nonResourceURLs [/metrics /healthz] does not match "/healthz/etcd"',
        ),
        (
            PolicyRule(level="None", namespaces=["kube-system"]),
            RequestAttributes(verb="get", resource="nodes"),
            'namespaces [kube-system] does not include "" (cluster-scoped)',
        ),
    ],
)
def test_why_a_rule_does_not_match(rule: PolicyRule, attrs: RequestAttributes, reason: str) -> None:
    explained = explain_rule(0, rule, attrs)
    assert not explained.matched
    assert reason in explained.reasons


@pytest.mark.parametrize(
    ("rule", "attrs", "reason"),
    [
        (PolicyRule(level="Metadata"), HEALTHZ, "the rule has no selectors, so it matches every request"),
        (
            PolicyRule(level="Metadata", nonResourceURLs=["/healthz*"]),
            HEALTHZ,
            'nonResourceURLs prefix "/healthz*" matches "/healthz/etcd"',
        ),
        (
            PolicyRule(level="Metadata", resources=[GroupResources(resources=["pods/*"])]),
            EXEC,
            '"pods/*" matches "pods" and all its subresources',
        ),
        (
            PolicyRule(level="Metadata", resources=[GroupResources(resources=["*/exec"])]),
            EXEC,
            '"*/exec" matches subresource "exec" of any resource',
        ),
        (
            PolicyRule(level="Metadata", resources=[GroupResources(resources=["*"])]),
            EXEC,
            '"*" matches every resource, including "pods/exec"',
        ),
        (
            PolicyRule(level="Metadata", resources=[GroupResources()]),
            EXEC,
            'resources[0]: group "" lists no resources, so all match',
        ),
        (PolicyRule(level="Metadata", namespaces=["prod"]), EXEC, 'namespaces [prod] includes "prod"'),
        (
            PolicyRule(level="Metadata", userGroups=["ops", "dev"]),
            JANE_GET_POD,
            'userGroups [ops dev] includes the user\'s group "dev"',
        ),
    ],
)
def test_why_a_rule_matches(rule: PolicyRule, attrs: RequestAttributes, reason: str) -> None:
    explained = explain_rule(0, rule, attrs)
    assert explained.matched
    assert any(reason in text for text in explained.reasons), explained.reasons


def test_a_resource_mismatch_is_named_before_a_name_mismatch() -> None:
    rule = PolicyRule(level="None", resources=[GroupResources(resources=["configmaps"], resourceNames=["leader"])])
    secrets = RequestAttributes(verb="get", namespace="kube-system", resource="secrets")
    assert _reasons(rule, secrets) == ['resources[0]: [configmaps] does not include "secrets"']


def test_every_failing_selector_is_reported_not_only_the_first() -> None:
    rule = PolicyRule(level="None", users=["bob"], verbs=["delete"], resources=[GroupResources(resources=["secrets"])])
    assert len(_reasons(rule, JANE_GET_POD)) == 3


def test_only_the_matching_resources_entry_is_shown_for_a_match() -> None:
    rule = PolicyRule(
        level="Metadata",
        resources=[GroupResources(group="apps", resources=["deployments"]), GroupResources(resources=["pods"])],
    )
    assert _reasons(rule, JANE_GET_POD) == ['resources[1]: "pods" matches "pods"']


POLICY_YAML = b"""\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: [system:kube-proxy]
  - level: Metadata
    resources:
      - group: ""
        resources: [secrets]
  - level: RequestResponse
    omitStages: [Panic]
"""


def test_explanation_of_a_loaded_policy_carries_rule_lines() -> None:
    loaded = load_policy_bytes(POLICY_YAML, source="policy.yaml")
    explanation = explain(loaded, JANE_GET_POD)
    assert explanation.decision.rule_index == 2
    assert explanation.decision.level is Level.REQUEST_RESPONSE
    assert [rule.line for rule in explanation.rules] == [5, 7, 11]
    assert explanation.matched_rule is explanation.rules[2]
    assert [rule.index for rule in explanation.earlier_rules] == [0, 1]
    assert [rule.matched for rule in explanation.rules] == [False, False, True]


def test_no_match_lists_every_rule_as_earlier() -> None:
    policy = Policy(rules=[PolicyRule(level="Metadata", verbs=["list"])])
    explanation = explain(policy, JANE_GET_POD)
    assert explanation.matched_rule is None
    assert explanation.decision.level is Level.NONE
    assert len(explanation.earlier_rules) == 1
    assert explanation.rules[0].line is None


@settings(max_examples=100, deadline=None)
@given(policy=policies, attrs_list=st.lists(requests(), min_size=1, max_size=6))
def test_explanations_agree_with_the_checker(policy: Policy, attrs_list: list[RequestAttributes]) -> None:
    for attrs in attrs_list:
        explanation = explain(policy, attrs)
        assert explanation.decision == evaluate(policy, attrs)
        for rule, explained in zip(policy.rules, explanation.rules, strict=True):
            assert explained.matched is rule_matches(rule, attrs)
            assert explained.reasons


DEPLOYMENT = RequestAttributes(user="jane", verb="update", namespace="prod", api_group="apps", resource="deployments")


@pytest.mark.parametrize(
    ("attrs", "matched", "reason"),
    [
        (JANE_GET_POD, True, 'group "*" matches every API group, the core group included'),
        (DEPLOYMENT, True, 'group "*" matches every API group, "apps" included'),
        (EXEC, False, '[pods deployments] does not include "pods/exec"'),
        (HEALTHZ, False, "resource rules never match non-resource requests"),
    ],
)
def test_all_groups_entry_is_explained(attrs: RequestAttributes, matched: bool, reason: str) -> None:
    """Kubernetes 1.36: `group: "*"` matches core pods and apps deployments alike; resources still count."""
    rule = PolicyRule(level="Request", resources=[GroupResources(group="*", resources=["pods", "deployments"])])
    explained = explain_rule(0, rule, attrs)
    assert explained.matched is matched
    assert explained.matched is rule_matches(rule, attrs)
    assert any(reason in text for text in explained.reasons), explained.reasons
