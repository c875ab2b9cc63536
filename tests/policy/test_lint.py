"""lint_policy: each check fires on a minimal bad policy and stays quiet on its fixed version.

Expectations follow the apiserver's documented semantics: Request keeps the request body,
RequestResponse also the response; GET/LIST carry no request body; a rule naming `pods` does
not match `pods/exec`; the first matching rule wins; groups are compared exactly, `"*"` matching
every group (Kubernetes 1.36+).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubetrail.model.policy import GroupResources, PolicyRule
from kubetrail.policy import PolicyIssue, Severity, load_policy, load_policy_bytes
from kubetrail.policy.attributes import RequestAttributes
from kubetrail.policy.lint import CODES, exit_code, lint_policy
from kubetrail.policy.lint_shadow import resource_spec_covers, rule_covers, url_covers
from kubetrail.policy.match import rule_matches

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
HEADER = "apiVersion: audit.k8s.io/v1\nkind: Policy\n"


def lint(body: str) -> list[PolicyIssue]:
    return lint_policy(load_policy_bytes((HEADER + textwrap.dedent(body)).encode(), source="p.yaml"))


def with_code(findings: list[PolicyIssue], code: str) -> list[PolicyIssue]:
    return [finding for finding in findings if finding.code == code]


# (id, code, bad policy body, fixed policy body, rule index the bad finding names)
CASES = [
    (
        "verbs-mis-indented",
        "unknown-field",
        """
        omitStages: [RequestReceived]
        rules:
        - level: None
          users: [system:kube-proxy]
          resources:
          - group: ""
            resources: [endpoints]
            verbs: [watch]
        - level: Metadata
        """,
        """
        omitStages: [RequestReceived]
        rules:
        - level: None
          users: [system:kube-proxy]
          verbs: [watch]
          resources:
          - group: ""
            resources: [endpoints]
        - level: Metadata
        """,
        0,
    ),
    (
        "secrets-named-at-request",
        "secret-body-recorded",
        """
        rules:
        - level: Request
          resources: [{group: "", resources: [secrets]}]
        - level: Metadata
        """,
        """
        rules:
        - level: Metadata
          resources: [{group: "", resources: [secrets]}]
        - level: Metadata
        """,
        0,
    ),
    (
        "catch-all-at-request",
        "secret-body-recorded",
        """
        rules:
        - level: Request
        """,
        """
        rules:
        - level: Metadata
          resources:
          - {group: "", resources: [secrets, configmaps, serviceaccounts/token]}
          - {group: authentication.k8s.io, resources: [tokenreviews]}
        - level: Request
        """,
        0,
    ),
    (
        "core-group-at-request",
        "secret-body-recorded",
        """
        rules:
        - level: None
          verbs: [watch]
        - level: Request
          resources: [{group: ""}]
        - level: Metadata
        """,
        """
        rules:
        - level: None
          verbs: [watch]
        - level: Metadata
          resources: [{group: "", resources: [secrets]}]
        - level: Request
          resources: [{group: ""}]
        - level: Metadata
        """,
        1,
    ),
    (
        "secret-reads-at-request-response",
        "secret-body-recorded",
        """
        rules:
        - level: RequestResponse
          verbs: [get, list]
          resources: [{group: "", resources: [secrets]}]
        - level: Metadata
        """,
        """
        rules:
        - level: Request
          verbs: [get, list]
          resources: [{group: "", resources: [secrets]}]
        - level: Metadata
        """,
        0,
    ),
    (
        "one-user-at-request-response",
        "secret-body-recorded",
        """
        rules:
        - level: RequestResponse
          users: [cluster-admin@example.com]
        - level: Metadata
        """,
        """
        rules:
        - level: Metadata
          resources: [{group: "", resources: [secrets]}]
        - level: RequestResponse
          users: [cluster-admin@example.com]
        - level: Metadata
        """,
        0,
    ),
    (
        "one-named-secret",
        "secret-body-recorded",
        """
        rules:
        - level: RequestResponse
          resources: [{group: "", resources: [secrets], resourceNames: [db-password]}]
        - level: Metadata
        """,
        """
        rules:
        - level: Metadata
          resources: [{group: "", resources: [secrets], resourceNames: [db-password]}]
        - level: Metadata
        """,
        0,
    ),
    (
        "one-namespace-in-full",
        "secret-body-recorded",
        """
        rules:
        - level: Request
          namespaces: [payments]
        - level: Metadata
        """,
        """
        rules:
        - level: Metadata
          namespaces: [payments]
        - level: Metadata
        """,
        0,
    ),
    (
        "configmaps-in-kube-system",
        "configmap-body-recorded",
        """
        rules:
        - level: Request
          namespaces: [kube-system]
          resources: [{group: "", resources: [configmaps]}]
        - level: Metadata
        """,
        """
        rules:
        - level: Metadata
          namespaces: [kube-system]
          resources: [{group: "", resources: [configmaps]}]
        - level: Metadata
        """,
        0,
    ),
    (
        "tokenreviews-at-request",
        "token-body-recorded",
        """
        rules:
        - level: Request
          resources: [{group: authentication.k8s.io, resources: [tokenreviews]}]
        - level: Metadata
        """,
        """
        rules:
        - level: Metadata
          resources: [{group: authentication.k8s.io, resources: [tokenreviews]}]
        - level: Metadata
        """,
        0,
    ),
    (
        "token-requests-in-full",
        "token-body-recorded",
        """
        rules:
        - level: RequestResponse
          resources: [{group: "", resources: [serviceaccounts/token]}]
        - level: Metadata
        """,
        """
        rules:
        - level: Request
          resources: [{group: "", resources: [serviceaccounts/token]}]
        - level: Metadata
        """,
        0,
    ),
    (
        "no-catch-all",
        "no-catch-all",
        """
        rules:
        - level: Metadata
          userGroups: [system:authenticated]
        """,
        """
        rules:
        - level: Metadata
          userGroups: [system:authenticated]
        - level: None
        """,
        0,
    ),
    (
        "request-received",
        "request-received-kept",
        """
        rules:
        - level: None
          nonResourceURLs: ["/healthz*"]
        - level: Metadata
        """,
        """
        rules:
        - level: None
          nonResourceURLs: ["/healthz*"]
        - level: Metadata
          omitStages: [RequestReceived]
        """,
        1,
    ),
    (
        "catch-all-first",
        "shadowed-rule",
        """
        rules:
        - level: Metadata
        - level: None
          verbs: [watch]
        """,
        """
        rules:
        - level: None
          verbs: [watch]
        - level: Metadata
        """,
        1,
    ),
    (
        "urls-at-request",
        "body-level-on-urls",
        """
        rules:
        - level: Request
          nonResourceURLs: ["/version"]
        - level: Metadata
        """,
        """
        rules:
        - level: Metadata
          nonResourceURLs: ["/version"]
        - level: Metadata
        """,
        0,
    ),
    (
        "deployments-in-core",
        "wrong-api-group",
        """
        rules:
        - level: RequestResponse
          resources: [{group: "", resources: [deployments]}]
        - level: Metadata
        """,
        """
        rules:
        - level: RequestResponse
          resources: [{group: apps, resources: [deployments]}]
        - level: Metadata
        """,
        0,
    ),
    (
        "secrets-in-apps",
        "wrong-api-group",
        """
        rules:
        - level: Metadata
          resources: [{group: apps, resources: [secrets]}]
        - level: Metadata
        """,
        """
        rules:
        - level: Metadata
          resources: [{group: "", resources: [secrets]}]
        - level: Metadata
        """,
        0,
    ),
    (
        "roles-in-core",
        "wrong-api-group",
        """
        rules:
        - level: RequestResponse
          resources: [{group: "", resources: [roles, rolebindings]}]
        - level: Metadata
        """,
        """
        rules:
        - level: RequestResponse
          resources: [{group: rbac.authorization.k8s.io, resources: [roles, rolebindings]}]
        - level: Metadata
        """,
        0,
    ),
    (
        "singular-pod",
        "unknown-resource",
        """
        rules:
        - level: RequestResponse
          resources: [{group: "", resources: [pod]}]
        - level: Metadata
        """,
        """
        rules:
        - level: RequestResponse
          resources: [{group: "", resources: [pods]}]
        - level: Metadata
        """,
        0,
    ),
    (
        "exec-unmatched",
        "pods-subresources-uncovered",
        """
        rules:
        - level: RequestResponse
          resources: [{group: "", resources: [pods]}]
        """,
        """
        rules:
        - level: RequestResponse
          resources: [{group: "", resources: [pods, pods/exec, pods/attach, pods/portforward]}]
        """,
        0,
    ),
    (
        "all-groups-before-1.36",
        "all-groups-needs-1.36",
        """
        rules:
        - level: None
          verbs: [update, patch]
          resources: [{group: "*", resources: ["*/status"]}]
        - level: Metadata
        """,
        """
        rules:
        - level: None
          verbs: [update, patch]
          resources: [{group: "", resources: ["*/status"]}, {group: apps, resources: ["*/status"]}]
        - level: Metadata
        """,
        0,
    ),
    (
        "exec-dropped-by-catch-all",
        "pods-subresources-uncovered",
        """
        rules:
        - level: Request
          resources: [{group: "", resources: [pods]}]
        - level: None
        """,
        """
        rules:
        - level: Request
          resources: [{group: "", resources: [pods/*]}]
        - level: None
        """,
        1,
    ),
]


@pytest.mark.parametrize(("code", "bad", "fixed", "rule"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_check_fires_on_bad_and_is_quiet_on_fixed(code: str, bad: str, fixed: str, rule: int) -> None:
    found = with_code(lint(bad), code)
    assert found, f"{code} not reported"
    assert found[0].rule == rule
    assert found[0].line is not None
    assert found[0].hint
    assert not with_code(lint(fixed), code)


def test_every_code_is_exercised() -> None:
    exercised = {case[1] for case in CASES}
    assert exercised | {"noise-not-dropped", "duplicate-field", "extra-documents"} == set(CODES)


def test_unknown_field_is_an_error_with_its_line() -> None:
    findings = lint(CASES[0][2])
    (finding,) = with_code(findings, "unknown-field")
    assert finding.severity is Severity.ERROR
    text = HEADER + textwrap.dedent(CASES[0][2])
    assert finding.line == text.splitlines().index("    verbs: [watch]") + 1
    assert "rules[0].resources[0].verbs" in finding.message


def test_secret_leak_severity_and_responsible_rule_through_a_broader_rule() -> None:
    findings = lint(CASES[3][2])
    (finding,) = with_code(findings, "secret-body-recorded")
    assert finding.severity is Severity.ERROR
    assert finding.field == "rules[1].level"
    assert "also matches secrets" in finding.message
    assert "request body" in finding.message


def test_leak_reachable_only_through_a_later_listed_user_is_found() -> None:
    # Rule 0 catches user a; only user b's requests reach rule 1.
    body = """
    rules:
    - level: None
      users: [a]
    - level: RequestResponse
      users: [a, b]
      namespaces: [vault]
    - level: Metadata
    """
    (finding,) = with_code(lint(body), "secret-body-recorded")
    assert finding.rule == 1
    assert "in namespace vault by b" in finding.message


def test_reads_at_request_level_keep_no_secret() -> None:
    # GET and LIST have no request body; at Request level only the request body is kept.
    assert not with_code(lint(CASES[4][3]), "secret-body-recorded")


def test_namespace_controller_deletecollection_at_request_keeps_no_secret() -> None:
    body = """
    rules:
    - level: Request
      users: [system:serviceaccount:kube-system:namespace-controller]
      verbs: [deletecollection]
    - level: Metadata
    """
    assert not with_code(lint(body), "secret-body-recorded")


def test_configmap_finding_is_a_warning_and_names_the_rule() -> None:
    (finding,) = with_code(lint(CASES[8][2]), "configmap-body-recorded")
    assert finding.severity is Severity.WARNING
    assert "rule 0 names configmaps" in finding.message
    assert "kube-system" in finding.message


def test_catch_all_at_request_response_reports_each_sensitive_kind() -> None:
    findings = lint("rules:\n- level: RequestResponse\n")
    codes = {finding.code for finding in findings}
    assert {"secret-body-recorded", "configmap-body-recorded", "token-body-recorded"} <= codes
    tokens = with_code(findings, "token-body-recorded")
    assert {"TokenReview", "TokenRequest"} == {finding.message.split()[0] for finding in tokens}
    assert exit_code(findings) == 2


def test_request_received_omitted_per_rule_is_enough() -> None:
    body = """
    rules:
    - level: None
      verbs: [watch]
    - level: Metadata
      omitStages: [RequestReceived]
    """
    assert not with_code(lint(body), "request-received-kept")


NOISE = [
    ("watch requests", "- level: None\n  verbs: [watch]\n"),
    ("kube-proxy watches", "- level: None\n  users: [system:kube-proxy]\n  verbs: [watch]\n"),
    ("health checks", '- level: None\n  nonResourceURLs: ["/healthz*", "/livez*", "/readyz*"]\n'),
    ("metrics scrapes", '- level: None\n  nonResourceURLs: ["/metrics"]\n'),
    ("lease renewals", "- level: None\n  resources: [{group: coordination.k8s.io, resources: [leases]}]\n"),
    ("events", '- level: None\n  resources: [{group: "", resources: [events]}, {group: events.k8s.io}]\n'),
    (
        "node gets by kubelets",
        '- level: None\n  userGroups: [system:nodes]\n  verbs: [get]\n  resources: [{group: "", resources: [nodes]}]\n',
    ),
]


def noise_categories(body: str) -> set[str]:
    return {f.message.split(" are recorded")[0] for f in with_code(lint(body), "noise-not-dropped")}


@pytest.mark.parametrize(("category", "drop_rule"), NOISE, ids=[n[0] for n in NOISE])
def test_noise_category_fires_until_dropped(category: str, drop_rule: str) -> None:
    base = "omitStages: [RequestReceived]\nrules:\n"
    assert category in noise_categories(base + "- level: Metadata\n")
    assert category not in noise_categories(base + drop_rule + "- level: Metadata\n")


def test_health_checks_dropped_only_for_signed_in_users_still_fire() -> None:
    # Load balancer and kubelet probes of the apiserver are anonymous (system:unauthenticated).
    body = """
    rules:
    - level: None
      userGroups: [system:authenticated]
      nonResourceURLs: ["/healthz*", "/livez*", "/readyz*"]
    - level: Metadata
    """
    assert "health checks" in noise_categories(body)


def test_kube_proxy_endpointslice_watches_are_noticed() -> None:
    body = """
    rules:
    - level: None
      users: [system:kube-proxy]
      verbs: [watch]
      resources: [{group: "", resources: [endpoints, services]}]
    - level: Metadata
    """
    (finding,) = [f for f in with_code(lint(body), "noise-not-dropped") if f.message.startswith("kube-proxy")]
    assert "endpointslices.discovery.k8s.io" in finding.message
    assert finding.rule == 1


def test_pod_exec_dropped_by_an_explicit_none_rule_names_that_rule() -> None:
    body = """
    rules:
    - level: None
      resources: [{group: "", resources: [pods/exec]}]
    - level: RequestResponse
    """
    (finding,) = with_code(lint(body), "pods-subresources-uncovered")
    assert finding.rule == 0
    assert "pods/exec" in finding.message
    assert "pods/attach" not in finding.message


def test_exec_recorded_at_a_lower_level_is_not_reported() -> None:
    # Connect requests keep no bodies, so Metadata records everything an exec event has.
    body = """
    rules:
    - level: RequestResponse
      resources: [{group: "", resources: [pods]}]
    - level: Metadata
    """
    assert not with_code(lint(body), "pods-subresources-uncovered")


def test_wrong_group_points_at_the_resource_entry() -> None:
    (finding,) = with_code(lint(CASES[15][2]), "wrong-api-group")
    assert finding.field == "rules[0].resources[0].resources[0]"
    assert '"apps"' in finding.hint


@pytest.mark.parametrize(
    ("group", "resource"),
    [
        ("metrics.k8s.io", "pods"),  # the metrics API serves pods and nodes
        ("iam.example.com", "roles"),  # a custom resource may reuse a built-in name
        ("events.k8s.io", "events"),
        ("", "events"),
        ("policy", "poddisruptionbudgets"),
        ("", "*"),
        ("apps", "deployments/scale"),
        ("", "*/status"),
    ],
)
def test_resources_in_their_own_groups_are_not_reported(group: str, resource: str) -> None:
    body = f'rules:\n- level: Metadata\n  resources: [{{group: "{group}", resources: ["{resource}"]}}]\n- level: None\n'
    codes = {finding.code for finding in lint(body)}
    assert not codes & {"wrong-api-group", "unknown-resource"}


def test_extensions_deployments_are_reported() -> None:
    body = 'rules:\n- level: Metadata\n  resources: [{group: extensions, resources: ["deployments"]}]\n- level: None\n'
    assert with_code(lint(body), "wrong-api-group")


def test_capitalised_core_resource_suggests_the_real_name() -> None:
    body = 'rules:\n- level: Metadata\n  resources: [{group: "", resources: ["Secrets"]}]\n- level: None\n'
    (finding,) = with_code(lint(body), "unknown-resource")
    assert '"secrets"' in finding.hint


@pytest.mark.parametrize("resource", ["deployments", "secrets", "roles", "pods/exec", "*/status", "*"])
def test_all_groups_entries_are_not_wrong_group(resource: str) -> None:
    body = f'rules:\n- level: Metadata\n  resources: [{{group: "*", resources: ["{resource}"]}}]\n- level: None\n'
    assert not {finding.code for finding in lint(body)} & {"wrong-api-group", "unknown-resource"}


def test_all_groups_note_is_informational_and_points_at_the_group() -> None:
    findings = lint('rules:\n- level: None\n  resources: [{group: "*", resources: [events]}]\n- level: Metadata\n')
    (finding,) = with_code(findings, "all-groups-needs-1.36")
    assert finding.severity is Severity.INFO
    assert finding.field == "rules[0].resources[0].group"
    assert "1.36" in finding.message


def test_secret_rule_in_every_group_names_secrets() -> None:
    body = """
    omitStages: [RequestReceived]
    rules:
    - level: RequestResponse
      resources: [{group: "*", resources: [secrets]}]
    - level: Metadata
    """
    (finding,) = with_code(lint(body), "secret-body-recorded")
    assert finding.rule == 0
    assert "rule 0 names secrets" in finding.message


def test_all_groups_status_rule_shadows_a_later_core_status_rule() -> None:
    body = """
    omitStages: [RequestReceived]
    rules:
    - level: None
      resources: [{group: "*", resources: ["*/status"]}]
    - level: Request
      resources: [{group: "", resources: [pods/status]}, {group: apps, resources: [deployments/status]}]
    - level: Metadata
    """
    (finding,) = with_code(lint(body), "shadowed-rule")
    assert finding.rule == 1


# --- subsumption: each case from the matching rules (first match wins; see match.py)

SPEC_COVERS = [
    ("*", "pods/exec", True),
    ("pods", "pods", True),
    ("pods", "pods/exec", False),
    ("pods/*", "pods", True),
    ("pods/*", "pods/exec", True),
    ("pods/*", "deployments", False),
    ("*/status", "pods/status", True),
    ("*/status", "*/status", True),
    ("*/status", "pods", False),
    ("pods/exec", "pods/*", False),
    ("*/*", "*", False),
    ("pods", "*", False),
]


@pytest.mark.parametrize(("outer", "inner", "expected"), SPEC_COVERS)
def test_resource_spec_covers(outer: str, inner: str, expected: bool) -> None:
    assert resource_spec_covers(outer, inner) is expected


URL_COVERS = [
    ("*", "/anything", True),
    ("/healthz*", "/healthz", True),
    ("/healthz*", "/healthz/etcd", True),
    ("/healthz*", "/healthz/*", True),
    ("/api*", "/apis*", True),
    ("/api", "/api*", False),
    ("/apis*", "/api*", False),
    ("/version", "/version", True),
]


@pytest.mark.parametrize(("outer", "inner", "expected"), URL_COVERS)
def test_url_covers(outer: str, inner: str, expected: bool) -> None:
    assert url_covers(outer, inner) is expected


def core(*resources: str, names: tuple[str, ...] = ()) -> list[GroupResources]:
    return [GroupResources(group="", resources=list(resources), resourceNames=list(names))]


def r(**selectors: Any) -> PolicyRule:
    return PolicyRule(level="None", **selectors)


RULE_COVERS = [
    (r(), r(nonResourceURLs=["/x"]), True),
    (r(users=["a", "b"]), r(users=["a"]), True),
    (r(users=["a"]), r(users=["a", "b"]), False),
    (r(users=["a"]), r(), False),
    (r(userGroups=["g"]), r(userGroups=["g", "h"]), False),
    (r(userGroups=["g"]), r(users=["a"]), False),
    (r(verbs=["get"]), r(verbs=["get"], users=["a"]), True),
    (r(resources=[GroupResources()]), r(resources=core("pods")), True),
    (r(resources=core("pods")), r(resources=core("pods/exec")), False),
    (r(resources=core("*")), r(resources=[GroupResources()]), True),
    (r(resources=core("*")), r(resources=[GroupResources("apps")]), False),
    (r(resources=core("s", names=("a", "b"))), r(resources=core("s", names=("a",))), True),
    (r(resources=core("s", names=("a",))), r(resources=core("s")), False),
    (r(namespaces=["prod"]), r(resources=core("pods")), False),
    (r(namespaces=["prod"]), r(namespaces=["prod"], resources=core("pods")), True),
    (r(resources=core("pods")), r(namespaces=["prod"]), False),
    (r(resources=core("pods")), r(nonResourceURLs=["/x"]), False),
    (r(nonResourceURLs=["*"]), r(resources=core("pods")), False),
    (r(nonResourceURLs=["*"]), r(), False),
    (r(namespaces=["prod"]), r(), False),
    (
        r(resources=[*core("pods"), GroupResources(group="", resources=["secrets"])]),
        r(resources=core("pods", "secrets")),
        True,
    ),
    (r(resources=[GroupResources("*", ["pods"])]), r(resources=core("pods")), True),
    (r(resources=[GroupResources("*", ["pods"])]), r(resources=[GroupResources("apps", ["pods"])]), True),
    (r(resources=[GroupResources("*")]), r(resources=[GroupResources("apps")]), True),
    (r(resources=[GroupResources("*")]), r(resources=[GroupResources("*", ["*/status"])]), True),
    (r(resources=core("pods")), r(resources=[GroupResources("*", ["pods"])]), False),
    (r(resources=[*core("pods"), GroupResources("apps", ["pods"])]), r(resources=[GroupResources("*", ["pods"])]),
     False),  # other groups (CRDs) serve pods too
    (r(resources=core("*")), r(resources=[GroupResources("*")]), False),
    (r(resources=[GroupResources("*", ["pods"])]), r(resources=[GroupResources("*")]), False),
]  # fmt: skip


@pytest.mark.parametrize(("outer", "inner", "expected"), RULE_COVERS)
def test_rule_covers(outer: PolicyRule, inner: PolicyRule, expected: bool) -> None:
    assert rule_covers(outer, inner) is expected


_words = st.sampled_from
_resource_specs = _words(["pods", "pods/exec", "pods/*", "*/exec", "*/status", "*", "secrets", "pods/status"])
_group_resources = st.builds(
    GroupResources,
    group=_words(["", "apps", "*"]),
    resources=st.lists(_resource_specs, max_size=2),
    resourceNames=st.just([]) | st.lists(_words(["a", "b"]), min_size=1, max_size=2),
).map(lambda e: e if e.resources else GroupResources(group=e.group))
_rules = st.builds(
    PolicyRule,
    level=st.just("None"),
    users=st.lists(_words(["u1", "u2"]), max_size=2),
    userGroups=st.lists(_words(["g1", "g2"]), max_size=2),
    verbs=st.lists(_words(["get", "create"]), max_size=2),
    resources=st.lists(_group_resources, max_size=2),
    namespaces=st.lists(_words(["", "prod"]), max_size=2),
) | st.builds(
    PolicyRule, level=st.just("None"), nonResourceURLs=st.lists(_words(["*", "/a*", "/a", "/ab*"]), max_size=2)
)
_requests = st.builds(
    RequestAttributes,
    user=_words(["u1", "u2", "u3"]),
    groups=st.lists(_words(["g1", "g2", "g3"]), max_size=2).map(tuple),
    verb=_words(["get", "create", "list"]),
    is_resource_request=st.booleans(),
    namespace=_words(["", "prod", "dev"]),
    api_group=_words(["", "apps"]),
    resource=_words(["pods", "secrets", "deployments"]),
    subresource=_words(["", "exec", "status"]),
    name=_words(["", "a", "b", "c"]),
    path=_words(["/a", "/ab", "/abc", "/b"]),
)


@settings(max_examples=300, deadline=None)
@given(outer=_rules, inner=_rules, requests=st.lists(_requests, min_size=1, max_size=20))
def test_covers_is_sound(outer: PolicyRule, inner: PolicyRule, requests: list[RequestAttributes]) -> None:
    if rule_covers(outer, inner):
        for request in requests:
            if rule_matches(inner, request):
                assert rule_matches(outer, request)


def test_shadowed_rule_names_both_rules() -> None:
    body = """
    omitStages: [RequestReceived]
    rules:
    - level: Request
      namespaces: [prod]
    - level: Metadata
      namespaces: [prod]
      resources: [{group: "", resources: [secrets]}]
    - level: Metadata
    """
    (finding,) = with_code(lint(body), "shadowed-rule")
    assert finding.rule == 1
    assert "rule 0 (level Request)" in finding.message


# --- the example policies

EXPECTED_EXAMPLE_CODES = {
    "cis-oriented.yaml": set(),
    "gke-style.yaml": {"noise-not-dropped"},
    "metadata-everything.yaml": {"noise-not-dropped"},
    "kubernetes-docs-style.yaml": {"noise-not-dropped", "configmap-body-recorded"},
    "bad-policy.yaml": {
        "unknown-field",
        "secret-body-recorded",
        "configmap-body-recorded",
        "no-catch-all",
        "request-received-kept",
        "noise-not-dropped",
        "shadowed-rule",
        "body-level-on-urls",
        "wrong-api-group",
        "pods-subresources-uncovered",
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED_EXAMPLE_CODES))
def test_example_policy_findings(name: str) -> None:
    findings = lint_policy(load_policy(EXAMPLES / name))
    assert {finding.code for finding in findings} == EXPECTED_EXAMPLE_CODES[name]


def test_examples_directory_is_fully_covered() -> None:
    assert {path.name for path in EXAMPLES.glob("*.yaml")} == set(EXPECTED_EXAMPLE_CODES)


def test_gke_style_only_keeps_watches() -> None:
    findings = lint_policy(load_policy(EXAMPLES / "gke-style.yaml"))
    assert [finding.message.split(" are recorded")[0] for finding in findings] == ["watch requests"]


def test_docs_style_configmap_finding_is_the_kube_system_rule() -> None:
    findings = lint_policy(load_policy(EXAMPLES / "kubernetes-docs-style.yaml"))
    (configmaps,) = with_code(findings, "configmap-body-recorded")
    assert configmaps.rule == 5
    assert exit_code(findings) == 1


def test_audit2rbac_demo_policy_only_lacks_a_catch_all(corpus: Path) -> None:
    findings = lint_policy(load_policy(corpus / "audit2rbac" / "demo-policy.yaml"))
    assert [finding.code for finding in findings] == ["no-catch-all"]


def test_exit_codes() -> None:
    assert exit_code([]) == 0
    info = PolicyIssue(severity=Severity.INFO, field="", message="m")
    warning = PolicyIssue(severity=Severity.WARNING, field="", message="m")
    error = PolicyIssue(severity=Severity.ERROR, field="", message="m")
    assert exit_code([info]) == 0
    assert exit_code([info, warning]) == 1
    assert exit_code([warning, error]) == 2
