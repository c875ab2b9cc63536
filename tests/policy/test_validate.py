"""validate_policy: the apiserver's ValidatePolicy checks, field paths and wording, all errors at once."""

from __future__ import annotations

import pytest

from kubetrail.model.policy import GroupResources, Policy, PolicyRule
from kubetrail.policy import PolicyError, Severity, load_policy_bytes, validate_policy
from kubetrail.policy.validate import dns_subdomain_errors

LEVELS = '"None", "Metadata", "Request", "RequestResponse"'
STAGES = "RequestReceived,ResponseStarted,ResponseComplete,Panic"
DNS_ERROR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def messages(policy: Policy) -> list[str]:
    return [f"{issue.field}: {issue.message}" for issue in validate_policy(policy)]


VALID_RULES = [
    pytest.param(PolicyRule(level="Metadata"), id="catch-all"),
    pytest.param(PolicyRule(level="None", userGroups=["system:serviceaccounts", "system:nodes"]), id="non-humans"),
    pytest.param(
        PolicyRule(
            level="RequestResponse",
            verbs=["get"],
            resources=[GroupResources(group="rbac.authorization.k8s.io", resources=["roles", "rolebindings"])],
            namespaces=["kube-system"],
        ),
        id="specific-request",
    ),
    pytest.param(
        PolicyRule(
            level="Metadata", userGroups=["developers"], nonResourceURLs=["/logs*", "/healthz*", "/metrics", "*"]
        ),
        id="non-resource-urls",
    ),
    pytest.param(PolicyRule(level="Metadata", omitStages=["RequestReceived"]), id="omit-stage"),
    pytest.param(PolicyRule(level="Request", omitStages=[*STAGES.split(",")]), id="omit-every-stage"),
    pytest.param(PolicyRule(level="None", resources=[GroupResources()]), id="core-group-every-resource"),
    pytest.param(
        PolicyRule(level="Metadata", resources=[GroupResources(resources=["configmaps"], resourceNames=["cfg"])]),
        id="resource-names-with-resources",
    ),
    pytest.param(
        PolicyRule(level="Metadata", resources=[GroupResources(group="apps", resources=["deployments/scale"])]),
        id="subresource",
    ),
    pytest.param(PolicyRule(level="Metadata", omitManagedFields=True), id="omit-managed-fields"),
    pytest.param(PolicyRule(level="Metadata", nonResourceURLs=["/"]), id="root-url"),
    pytest.param(PolicyRule(level="Metadata", namespaces=[""]), id="cluster-scoped-namespace"),
    # Kubernetes 1.36 (kubernetes/kubernetes#135262): `group: "*"` is accepted and means every API group
    pytest.param(
        PolicyRule(
            level="None", verbs=["update", "patch"], resources=[GroupResources(group="*", resources=["*/status"])]
        ),
        id="all-groups-status",
    ),
    pytest.param(PolicyRule(level="Metadata", resources=[GroupResources(group="*")]), id="all-groups-every-resource"),
    pytest.param(
        PolicyRule(level="Metadata", resources=[GroupResources(group="*", resources=["pods"], resourceNames=["web"])]),
        id="all-groups-resource-names",
    ),
]


@pytest.mark.parametrize("rule", VALID_RULES)
def test_valid_rule_has_no_errors(rule: PolicyRule) -> None:
    assert messages(Policy(rules=[rule])) == []


def test_empty_policy_passes_validation() -> None:
    """ValidatePolicy accepts an empty policy; the loader refuses it for having no rules."""
    assert messages(Policy()) == []
    assert messages(Policy(omitStages=["RequestReceived"])) == []


def test_all_valid_rules_together() -> None:
    assert messages(Policy(rules=[param.values[0] for param in VALID_RULES])) == []


INVALID_RULES = [
    pytest.param(PolicyRule(), ["rules[0].level: Required value"], id="empty-rule"),
    pytest.param(
        PolicyRule(verbs=["get"], resources=[GroupResources(resources=["secrets"])], namespaces=["kube-system"]),
        ["rules[0].level: Required value"],
        id="missing-level",
    ),
    pytest.param(
        PolicyRule(level="FooBar"),
        [f'rules[0].level: Unsupported value: "FooBar": supported values: {LEVELS}'],
        id="unknown-level",
    ),
    pytest.param(
        PolicyRule(level="metadata"),
        [f'rules[0].level: Unsupported value: "metadata": supported values: {LEVELS}'],
        id="level-is-case-sensitive",
    ),
    pytest.param(
        PolicyRule(level="Metadata", namespaces=["default"], nonResourceURLs=["/logs*"]),
        [
            'rules[0].nonResourceURLs: Invalid value: []string{"/logs*"}: '
            "rules cannot apply to both regular resources and non-resource URLs"
        ],
        id="urls-with-namespaces",
    ),
    pytest.param(
        PolicyRule(level="Metadata", resources=[GroupResources(resources=["secrets"])], nonResourceURLs=["/logs*"]),
        [
            'rules[0].nonResourceURLs: Invalid value: []string{"/logs*"}: '
            "rules cannot apply to both regular resources and non-resource URLs"
        ],
        id="urls-with-resources",
    ),
    pytest.param(
        PolicyRule(
            level="Metadata", resources=[GroupResources(group="rbac.authorization.k8s.io/v1", resources=["roles"])]
        ),
        [f'rules[0].resources.group: Invalid value: "rbac.authorization.k8s.io/v1": {DNS_ERROR}'],
        id="group-with-version",
    ),
    pytest.param(
        PolicyRule(level="Metadata", resources=[GroupResources(group="Apps", resources=["deployments"])]),
        [f'rules[0].resources.group: Invalid value: "Apps": {DNS_ERROR}'],
        id="group-upper-case",
    ),
    # "*" is only accepted alone: it is not a pattern inside a group name
    pytest.param(
        PolicyRule(level="Metadata", resources=[GroupResources(group="*.example.com", resources=["widgets"])]),
        [f'rules[0].resources.group: Invalid value: "*.example.com": {DNS_ERROR}'],
        id="group-leading-wildcard",
    ),
    pytest.param(
        PolicyRule(level="Metadata", resources=[GroupResources(group="apps*", resources=["deployments"])]),
        [f'rules[0].resources.group: Invalid value: "apps*": {DNS_ERROR}'],
        id="group-trailing-wildcard",
    ),
    pytest.param(
        PolicyRule(level="Metadata", resources=[GroupResources(group="**", resources=["pods"])]),
        [f'rules[0].resources.group: Invalid value: "**": {DNS_ERROR}'],
        id="group-double-wildcard",
    ),
    pytest.param(
        PolicyRule(level="Metadata", resources=[GroupResources(group="*", resourceNames=["web"])]),
        [
            'rules[0].resources.resourceNames: Invalid value: []string{"web"}: '
            "using resourceNames requires at least one resource"
        ],
        id="all-groups-resource-names-without-resources",
    ),
    pytest.param(
        PolicyRule(level="Metadata", nonResourceURLs=["logs", "/healthz*"]),
        [
            'rules[0].nonResourceURLs[0]: Invalid value: "logs": '
            "non-resource URL rules must begin with a '/' character"
        ],
        id="url-without-slash",
    ),
    pytest.param(
        PolicyRule(level="Metadata", nonResourceURLs=["", "/healthz*"]),
        ["rules[0].nonResourceURLs[0]: Invalid value: \"\": non-resource URL rules must begin with a '/' character"],
        id="empty-url",
    ),
    pytest.param(
        PolicyRule(level="Metadata", nonResourceURLs=["/metrics", "/logs/*/*"]),
        [
            'rules[0].nonResourceURLs[1]: Invalid value: "/logs/*/*": '
            "non-resource URL wildcards '*' must be the final character of the rule"
        ],
        id="two-wildcards",
    ),
    pytest.param(
        PolicyRule(level="Metadata", nonResourceURLs=["/logs/*.log", "/metrics"]),
        [
            'rules[0].nonResourceURLs[0]: Invalid value: "/logs/*.log": '
            "non-resource URL wildcards '*' must be the final character of the rule"
        ],
        id="wildcard-not-last",
    ),
    pytest.param(
        PolicyRule(level="Metadata", nonResourceURLs=["*/healthz"]),
        [
            "rules[0].nonResourceURLs[0]: Invalid value: \"*/healthz\": non-resource URL rules must begin with a '/' "
            "character",
            'rules[0].nonResourceURLs[0]: Invalid value: "*/healthz": '
            "non-resource URL wildcards '*' must be the final character of the rule",
        ],
        id="url-both-errors",
    ),
    pytest.param(
        PolicyRule(
            level="Metadata", verbs=["get"], resources=[GroupResources(resourceNames=["leader"])], namespaces=["k"]
        ),
        [
            'rules[0].resources.resourceNames: Invalid value: []string{"leader"}: '
            "using resourceNames requires at least one resource"
        ],
        id="resource-names-without-resources",
    ),
    pytest.param(
        PolicyRule(level="Metadata", omitStages=["foo"]),
        [f'rules[0].omitStages[0]: Invalid value: "foo": allowed stages are {STAGES}'],
        id="rule-stage-unknown",
    ),
    pytest.param(
        PolicyRule(level="Metadata", omitStages=["RequestReceived", "requestreceived"]),
        [f'rules[0].omitStages[1]: Invalid value: "requestreceived": allowed stages are {STAGES}'],
        id="rule-stage-case-sensitive",
    ),
]


@pytest.mark.parametrize(("rule", "expected"), INVALID_RULES)
def test_invalid_rule_reports_field_path_and_wording(rule: PolicyRule, expected: list[str]) -> None:
    assert messages(Policy(rules=[rule])) == expected


def test_policy_level_stage_is_checked() -> None:
    policy = Policy(omitStages=["foo"], rules=[PolicyRule(level="Metadata")])
    assert messages(policy) == [f'omitStages[0]: Invalid value: "foo": allowed stages are {STAGES}']


def test_error_in_a_later_rule_names_its_index() -> None:
    rules = [param.values[0] for param in VALID_RULES] + [PolicyRule()]
    assert messages(Policy(rules=rules)) == [f"rules[{len(VALID_RULES)}].level: Required value"]


def test_every_error_is_reported_in_the_apiservers_order() -> None:
    policy = Policy(
        omitStages=["Never"],
        rules=[
            PolicyRule(
                level="Loud",
                nonResourceURLs=["metrics"],
                resources=[GroupResources(group="apps/v1", resourceNames=["x"])],
                omitStages=["Sometimes"],
            ),
            PolicyRule(),
        ],
    )
    assert messages(policy) == [
        f'omitStages[0]: Invalid value: "Never": allowed stages are {STAGES}',
        f'rules[0].level: Unsupported value: "Loud": supported values: {LEVELS}',
        "rules[0].nonResourceURLs[0]: Invalid value: \"metrics\": non-resource URL rules must begin with a '/' "
        "character",
        f'rules[0].resources.group: Invalid value: "apps/v1": {DNS_ERROR}',
        'rules[0].resources.resourceNames: Invalid value: []string{"x"}: using resourceNames requires at least one '
        "resource",
        f'rules[0].omitStages[0]: Invalid value: "Sometimes": allowed stages are {STAGES}',
        'rules[0].nonResourceURLs: Invalid value: []string{"metrics"}: rules cannot apply to both regular resources '
        "and non-resource URLs",
        "rules[1].level: Required value",
    ]
    assert all(issue.severity is Severity.ERROR for issue in validate_policy(policy))
    assert [issue.rule for issue in validate_policy(policy)] == [None, 0, 0, 0, 0, 0, 0, 1]


@pytest.mark.parametrize(
    ("group", "errors"),
    [
        ("apps", []),
        ("rbac.authorization.k8s.io", []),
        ("a-b.example.com", []),
        ("9.example", []),
        ("-apps", [DNS_ERROR]),
        ("apps.", [DNS_ERROR]),
        ("apps..io", [DNS_ERROR]),
        ("apps_v1", [DNS_ERROR]),
        ("a" * 253, []),
        ("a" * 254, ["must be no more than 253 characters"]),
        ("A" * 254, ["must be no more than 253 characters", DNS_ERROR]),
    ],
)
def test_group_names_follow_rfc_1123_subdomains(group: str, errors: list[str]) -> None:
    assert dns_subdomain_errors(group) == errors


def test_validation_values_are_quoted_like_go() -> None:
    rule = PolicyRule(level="Metadata", nonResourceURLs=['say"hi\\'])
    assert messages(Policy(rules=[rule]))[0].startswith('rules[0].nonResourceURLs[0]: Invalid value: "say\\"hi\\\\"')


POLICY_WITH_ERRORS = b"""apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [Sometimes]
rules:
  - level: Metadata
  - verbs: ["get"]
    resources:
      - group: apps/v1
        resources: [deployments]
  - level: Request
    nonResourceURLs:
      - /healthz
      - metrics
"""


def test_each_error_carries_file_and_line() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy_bytes(POLICY_WITH_ERRORS, source="audit.yaml")
    found = [(issue.source, issue.line, issue.field) for issue in caught.value.issues]
    assert found == [
        ("audit.yaml", 3, "omitStages[0]"),
        ("audit.yaml", 6, "rules[1].level"),
        ("audit.yaml", 8, "rules[1].resources.group"),
        ("audit.yaml", 13, "rules[2].nonResourceURLs[1]"),
    ]
    assert str(caught.value).splitlines()[1] == "audit.yaml:6: rules[1].level: Required value"
    assert all(issue.hint for issue in caught.value.issues)


ALL_GROUPS_POLICY = b"""apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  # drop status writes of every resource in every API group, the core group included
  - level: None
    verbs: [update, patch]
    resources:
      - group: "*"
        resources: ["*/status"]
  - level: Metadata
"""


def test_all_groups_policy_loads_as_on_kubernetes_1_36() -> None:
    """Before 1.36 the apiserver refused this file (group "*" is no RFC 1123 subdomain); since 1.36 it loads."""
    loaded = load_policy_bytes(ALL_GROUPS_POLICY, source="status.yaml")
    assert loaded.policy.rules[0].resources == [GroupResources(group="*", resources=["*/status"])]
    assert loaded.warnings == []


def test_all_groups_wildcard_does_not_make_other_group_errors_pass() -> None:
    body = ALL_GROUPS_POLICY.replace(b'- group: "*"', b'- group: "*"\n      - group: "Apps"')
    with pytest.raises(PolicyError) as caught:
        load_policy_bytes(body, source="status.yaml")
    assert [issue.message for issue in caught.value.issues] == [f'Invalid value: "Apps": {DNS_ERROR}']
