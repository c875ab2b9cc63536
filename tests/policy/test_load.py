"""load_policy / load_policy_bytes: accept exactly what kube-apiserver's policy reader accepts.

The reader decodes strictly first and falls back to lenient decoding (unknown and duplicate
fields become warnings); it refuses anything but audit.k8s.io/v1 since Kubernetes 1.24, wrong
types, a wrong kind, validation errors and a policy without rules.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetrail.model.policy import GroupResources, Policy, PolicyRule
from kubetrail.policy import LoadedPolicy, PolicyError, Severity, load_policy, load_policy_bytes

HEADER = "apiVersion: audit.k8s.io/v1\nkind: Policy\n"

# The policy the apiserver's reader test decodes, written here from the documented fields.
READER_POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    nonResourceURLs:
      - /healthz*
      - /version
  - level: RequestResponse
    users: ["tim"]
    userGroups: ["testers", "developers"]
    verbs: ["patch", "delete", "create"]
    resources:
      - group: ""
      - group: "rbac.authorization.k8s.io"
        resources: ["clusterroles", "clusterrolebindings"]
    namespaces: ["default", "kube-system"]
  - level: Metadata
"""

READER_EXPECTED = [
    PolicyRule(level="None", nonResourceURLs=["/healthz*", "/version"]),
    PolicyRule(
        level="RequestResponse",
        users=["tim"],
        userGroups=["testers", "developers"],
        verbs=["patch", "delete", "create"],
        resources=[
            GroupResources(),
            GroupResources(group="rbac.authorization.k8s.io", resources=["clusterroles", "clusterrolebindings"]),
        ],
        namespaces=["default", "kube-system"],
    ),
    PolicyRule(level="Metadata"),
]

DOCS_STYLE_POLICY = """apiVersion: audit.k8s.io/v1 # required
kind: Policy
# no events for the RequestReceived stage of any request
omitStages:
  - "RequestReceived"
rules:
  # pod changes with their bodies
  - level: RequestResponse
    resources:
    - group: ""
      resources: ["pods"]
  - level: Metadata
    resources:
    - group: ""
      resources: ["pods/log", "pods/status"]
  # a noisy leader-election configmap
  - level: None
    resources:
    - group: ""
      resources: ["configmaps"]
      resourceNames: ["controller-leader"]
  - level: None
    users: ["system:kube-proxy"]
    verbs: ["watch"]
    resources:
    - group: "" # core
      resources: ["endpoints", "services"]
  - level: None
    userGroups: ["system:authenticated"]
    nonResourceURLs:
    - "/api*"
    - "/version"
  - level: Request
    resources:
    - group: ""
      resources: ["configmaps"]
    namespaces: ["kube-system"]
  - level: Metadata
    resources:
    - group: ""
      resources: ["secrets", "configmaps"]
  - level: Request
    resources:
    - group: ""
    - group: "extensions"
  - level: Metadata
    omitStages:
      - "RequestReceived"
"""

JSON_POLICY = """{
\t"apiVersion": "audit.k8s.io/v1",
\t"kind": "Policy",
\t"omitStages": ["RequestReceived"],
\t"rules": [
\t\t{"level": "None", "nonResourceURLs": ["/healthz*", "/readyz*", "\\/livez*"]},
\t\t{"level": "Metadata", "omitManagedFields": true}
\t]
}
"""

ACCEPTED = {
    "minimal": HEADER + "rules:\n- level: Metadata\n",
    "reader-test-policy": READER_POLICY,
    "docs-style-policy": DOCS_STYLE_POLICY,
    "json": JSON_POLICY,
    "json-one-line": '{"apiVersion":"audit.k8s.io/v1","kind":"Policy","rules":[{"level":"None"}]}',
    "json-leading-space": '\n  {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Request"}]}\n',
    "kind-first": "kind: Policy\napiVersion: audit.k8s.io/v1\nrules:\n- level: Metadata\n",
    "kind-defaulted": "apiVersion: audit.k8s.io/v1\nrules:\n- level: Metadata\n",
    "level-none": HEADER + "rules:\n- level: None\n",
    "every-level": HEADER + "rules:\n- level: None\n- level: Metadata\n- level: Request\n- level: RequestResponse\n",
    "omit-stages-both": HEADER + "omitStages: [RequestReceived]\nrules:\n- level: Request\n  omitStages: [Panic]\n",
    "omit-managed-fields-both": HEADER + "omitManagedFields: true\nrules:\n- level: Request\n"
    "  omitManagedFields: false\n",
    "empty-selectors": HEADER + "rules:\n- level: Metadata\n  users: []\n  userGroups: []\n  verbs: []\n"
    "  resources: []\n  namespaces: []\n  nonResourceURLs: []\n  omitStages: []\n",
    "null-selectors": HEADER + "omitStages:\nmetadata: null\nrules:\n- level: Metadata\n  users: ~\n"
    "  omitManagedFields: null\n  resources:\n  - group: null\n",
    "leading-document-marker": "---\n" + HEADER + "rules:\n- level: Metadata\n",
    "comment-then-marker": "# audit policy\n---\n" + HEADER + "rules:\n- level: Metadata\n",
    "second-document-ignored": HEADER + "rules:\n- level: Metadata\n---\nkind: Foo\n",
    "document-end-marker": HEADER + "rules:\n- level: Metadata\n...\n",
    "crlf-line-ends": (HEADER + "rules:\n- level: Metadata\n").replace("\n", "\r\n"),
    "byte-order-mark": "\ufeff" + HEADER + "rules:\n- level: Metadata\n",
    "anchors-and-merge-keys": HEADER + "rules:\n- &quiet\n  level: None\n  users: [system:kube-proxy]\n"
    "- <<: *quiet\n  users: [system:kube-scheduler]\n",
    "unknown-field": HEADER + "rules:\n- level: Metadata\n  verb: [get]\n",
    "duplicate-field": HEADER + "rules:\n- level: None\n  level: Metadata\n",
    "metadata-name": HEADER + "metadata:\n  name: default\n  labels: {team: platform}\nrules:\n- level: Metadata\n",
    "go-yaml-boolean-y": HEADER + "rules:\n- level: Metadata\n  omitManagedFields: y\n",
    "sexagesimal-is-text": HEADER + "rules:\n- level: Metadata\n  users: [10:30]\n",
    "resource-wildcards": HEADER + "rules:\n- level: Request\n  resources:\n  - group: ''\n"
    "    resources: ['*', 'pods/*', '*/status']\n",
    "cluster-scoped-namespace": HEADER + "rules:\n- level: Metadata\n  namespaces: ['']\n",
    "url-star": HEADER + "rules:\n- level: None\n  nonResourceURLs: ['*', '/healthz*']\n",
}


@pytest.mark.parametrize("text", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_apiserver_accepts(text: str) -> None:
    loaded = load_policy_bytes(text.encode(), source="policy.yaml")
    assert loaded.policy.rules
    assert loaded.policy.apiVersion == "audit.k8s.io/v1"


def test_reader_policy_decodes_to_the_expected_rules() -> None:
    assert load_policy_bytes(READER_POLICY.encode()).policy.rules == READER_EXPECTED


def test_json_policy_values() -> None:
    policy = load_policy_bytes(JSON_POLICY.encode()).policy
    assert policy.omitStages == ["RequestReceived"]
    assert policy.rules[0].nonResourceURLs == ["/healthz*", "/readyz*", "/livez*"]
    assert policy.rules[1].omitManagedFields is True


def test_omit_managed_fields_tri_state() -> None:
    text = HEADER + "omitManagedFields: true\nrules:\n- level: Request\n  omitManagedFields: false\n- level: None\n"
    policy = load_policy_bytes(text.encode()).policy
    assert policy.omitManagedFields is True
    assert [rule.omitManagedFields for rule in policy.rules] == [False, None]


def test_nulls_read_as_absent_values() -> None:
    policy = load_policy_bytes(ACCEPTED["null-selectors"].encode()).policy
    assert policy.omitStages == []
    assert policy.rules[0].users == []
    assert policy.rules[0].omitManagedFields is None
    assert policy.rules[0].resources == [GroupResources()]


def test_merge_keys_copy_the_anchored_rule() -> None:
    rules = load_policy_bytes(ACCEPTED["anchors-and-merge-keys"].encode()).policy.rules
    assert rules == [
        PolicyRule(level="None", users=["system:kube-proxy"]),
        PolicyRule(level="None", users=["system:kube-scheduler"]),
    ]


def test_go_yaml_scalars() -> None:
    assert load_policy_bytes(ACCEPTED["go-yaml-boolean-y"].encode()).policy.rules[0].omitManagedFields is True
    assert load_policy_bytes(ACCEPTED["sexagesimal-is-text"].encode()).policy.rules[0].users == ["10:30"]


def test_duplicate_field_keeps_the_last_value_with_a_warning() -> None:
    loaded = load_policy_bytes(ACCEPTED["duplicate-field"].encode(), source="p.yaml")
    assert loaded.policy.rules[0].level == "Metadata"
    assert [(w.severity, w.line, w.field) for w in loaded.warnings] == [(Severity.WARNING, 5, "rules[0].level")]


def test_unknown_field_is_a_warning_naming_field_and_line() -> None:
    loaded = load_policy_bytes(ACCEPTED["unknown-field"].encode(), source="p.yaml")
    assert loaded.policy.rules[0].verbs == []
    [warning] = loaded.warnings
    assert warning.severity is Severity.WARNING
    assert warning.line == 5
    assert warning.field == "rules[0].verb"
    assert "rules[0].verb" in warning.message and "ignored" in warning.message
    assert warning.rule == 0
    assert str(warning).startswith("p.yaml:5: rules[0].verb:")


def test_unknown_fields_at_every_level() -> None:
    text = HEADER + "omitStage: [Panic]\nrules:\n- level: Metadata\n  resources:\n  - group: ''\n    resource: [pods]\n"
    loaded = load_policy_bytes(text.encode())
    assert [(w.field, w.line) for w in loaded.warnings] == [("omitStage", 3), ("rules[0].resources[0].resource", 8)]


def test_case_matters_for_field_names() -> None:
    text = HEADER + "rules:\n- Level: Metadata\n"
    with pytest.raises(PolicyError) as caught:
        load_policy_bytes(text.encode())
    assert [f"{i.field}: {i.message}" for i in caught.value.issues] == ["rules[0].level: Required value"]


def test_extra_documents_are_a_warning() -> None:
    loaded = load_policy_bytes(ACCEPTED["second-document-ignored"].encode())
    assert [w.code for w in loaded.warnings] == ["extra-documents"]


def test_line_numbers() -> None:
    loaded = load_policy_bytes(DOCS_STYLE_POLICY.encode())
    assert loaded.rule_line(0) == 8
    assert loaded.line_of(("rules", 2, "resources", 0, "resourceNames")) == 21
    assert loaded.line_of(("omitStages",)) == 4


def test_json_line_numbers() -> None:
    loaded = load_policy_bytes(JSON_POLICY.encode())
    assert loaded.rule_line(1) == 7
    assert loaded.line_of(("rules", 1, "omitManagedFields")) == 7


def load_error(text: str | bytes) -> PolicyError:
    data = text.encode() if isinstance(text, str) else text
    with pytest.raises(PolicyError) as caught:
        load_policy_bytes(data, source="policy.yaml")
    assert caught.value.issues
    assert all(issue.severity is Severity.ERROR for issue in caught.value.issues)
    return caught.value


REFUSED = {
    "v1beta1": "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: Metadata\n",
    "v1alpha1": "apiVersion: audit.k8s.io/v1alpha1\nkind: Policy\nrules:\n- level: Metadata\n",
    "no-rules": HEADER,
    "empty-rules": HEADER + "rules: []\n",
    "null-rules": HEADER + "rules: null\n",
    "empty-file": "",
    "comments-only": "# nothing here\n",
    "empty-first-document": "---\n---\n" + HEADER + "rules:\n- level: Metadata\n",
    "no-version-or-kind": "rules:\n- level: Metadata\n",
    "no-version": "kind: Policy\nrules:\n- level: Metadata\n",
    "core-version": "apiVersion: v1\nkind: Policy\nrules:\n- level: Metadata\n",
    "group-without-version": "apiVersion: audit.k8s.io\nkind: Policy\nrules:\n- level: Metadata\n",
    "version-is-a-list": "apiVersion: [audit.k8s.io/v1]\nkind: Policy\nrules:\n- level: Metadata\n",
    "kind-is-a-number": "apiVersion: audit.k8s.io/v1\nkind: 0\nrules:\n- level: Metadata\n",
    "kind-event": "apiVersion: audit.k8s.io/v1\nkind: Event\nrules:\n- level: Metadata\n",
    "kind-lower-case": "apiVersion: audit.k8s.io/v1\nkind: policy\nrules:\n- level: Metadata\n",
    "kind-config-map": "apiVersion: v1\nkind: ConfigMap\ndata: {}\n",
    "verbs-scalar": HEADER + "rules:\n- level: Metadata\n  verbs: get\n",
    "rules-mapping": HEADER + "rules:\n  level: Metadata\n",
    "level-number": HEADER + "rules:\n- level: 1\n",
    "level-boolean": HEADER + "rules:\n- level: yes\n",
    "user-number": HEADER + "rules:\n- level: Metadata\n  users: [1e3]\n",
    "user-go-yaml-boolean": HEADER + "rules:\n- level: Metadata\n  users: [n]\n",
    "omit-managed-fields-string": HEADER + "rules:\n- level: Metadata\n  omitManagedFields: 'true'\n",
    "resources-strings": HEADER + "rules:\n- level: Metadata\n  resources: [pods]\n",
    "metadata-string": HEADER + "metadata: audit\nrules:\n- level: Metadata\n",
    "unknown-level": HEADER + "rules:\n- level: Everything\n",
    "level-missing": HEADER + "rules:\n- verbs: [get]\n",
    "invalid-stage": HEADER + "omitStages: [RequestRecieved]\nrules:\n- level: Metadata\n",
    "yaml-syntax": HEADER + "rules:\n- level: Metadata\n  users: [a, b\n",
    "yaml-tab-indent": HEADER + "rules:\n\t- level: Metadata\n",
    "yaml-flow-read-as-json": "{apiVersion: audit.k8s.io/v1, kind: Policy, rules: [{level: None}]}",
    "json-with-comment": '{"apiVersion": "audit.k8s.io/v1", "kind": "Policy", # x\n "rules": [{"level": "None"}]}',
    "json-trailing-comma": '{"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None"},]}',
    "json-two-objects": '{"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None"}]}{}',
    "top-level-list": "- level: Metadata\n",
    "top-level-scalar": "hello world\n",
}


@pytest.mark.parametrize("text", REFUSED.values(), ids=REFUSED.keys())
def test_apiserver_refuses(text: str) -> None:
    error = load_error(text)
    assert all(issue.source == "policy.yaml" for issue in error.issues)
    assert error.hint


@pytest.mark.parametrize("version", ["v1beta1", "v1alpha1"])
def test_retired_versions_name_the_release_and_the_conversion(version: str) -> None:
    error = load_error(REFUSED[version])
    [issue] = error.issues
    assert f"audit.k8s.io/{version}" in issue.message
    assert "1.24" in issue.message
    assert issue.line == 1
    assert issue.field == "apiVersion"
    assert "apiVersion" in error.hint and "audit.k8s.io/v1" in error.hint


@pytest.mark.parametrize("name", ["no-rules", "empty-rules", "null-rules"])
def test_no_rules_uses_the_apiservers_words(name: str) -> None:
    [issue] = load_error(REFUSED[name]).issues
    assert issue.message == "loaded illegal policy with 0 rules"


def test_validation_runs_before_the_rule_count() -> None:
    """The apiserver validates first: a bad policy-level stage is reported even without rules."""
    [issue] = load_error(HEADER + "omitStages: [Later]\n").issues
    assert issue.field == "omitStages[0]"


def test_wrong_type_names_the_field_and_line() -> None:
    [issue] = load_error(REFUSED["verbs-scalar"]).issues
    assert issue.field == "rules[0].verbs"
    assert issue.line == 5
    assert "array" in issue.message


def test_wrong_kind_names_the_kind() -> None:
    [issue] = load_error(REFUSED["kind-event"]).issues
    assert '"Event"' in issue.message
    assert issue.field == "kind"
    assert issue.line == 2


def test_missing_api_version_is_named() -> None:
    [issue] = load_error(REFUSED["no-version"]).issues
    assert "apiVersion" in issue.message


def test_yaml_syntax_error_has_line_and_column() -> None:
    [issue] = load_error(REFUSED["yaml-syntax"]).issues
    assert issue.line is not None and issue.line >= 5
    assert "column" in issue.message


def test_json_syntax_error_points_at_json() -> None:
    error = load_error(REFUSED["yaml-flow-read-as-json"])
    assert "JSON" in error.issues[0].message
    assert error.issues[0].line == 1
    assert "JSON" in error.hint


def test_binary_data_is_refused_without_decoding() -> None:
    [issue] = load_error(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR").issues
    assert "binary" in issue.message


def test_invalid_utf8_is_refused() -> None:
    [issue] = load_error(HEADER.encode() + b"rules:\n- level: \xff\xfe\n").issues
    assert "UTF-8" in issue.message


def test_load_policy_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "audit-policy.yaml"
    path.write_text(DOCS_STYLE_POLICY)
    loaded = load_policy(path)
    assert isinstance(loaded, LoadedPolicy)
    assert loaded.source == str(path)
    assert len(loaded.policy.rules) == 9
    assert isinstance(loaded.policy, Policy)


@pytest.mark.parametrize("make", [lambda p: p / "missing.yaml", lambda p: p])
def test_unreadable_path_is_a_policy_error(tmp_path: Path, make: object) -> None:
    target = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(PolicyError) as caught:
        load_policy(target)
    assert "cannot read policy file" in caught.value.issues[0].message


def test_corpus_policy_loads(corpus: Path) -> None:
    loaded = load_policy(corpus / "audit2rbac" / "demo-policy.yaml")
    [rule] = loaded.policy.rules
    assert rule.level == "Metadata"
    assert rule.omitStages == ["RequestReceived", "ResponseStarted", "Panic"]
    assert "system:serviceaccount:ns1:sa1" in rule.users
    assert loaded.warnings == []
