"""`kubetrail policy explain`: single requests, one event, and the batch JSON form, run as the real command."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kubetrail.cli.main import cli

# ---- the apiserver checker's requests and rules, as audit events and policy YAML ----

TIM = {"username": "tim@k8s.io", "groups": ["humans", "developers"]}


def _event(audit_id: str, uri: str, user: dict[str, Any], ref: dict[str, str] | None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": audit_id,
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": "get",
        "user": user,
    }
    if ref is not None:
        event["objectRef"] = ref
    return event


EVENTS = [
    _event(
        "namespaced",
        "/api/v1/namespaces/default/pods/busybox",
        TIM,
        {"resource": "pods", "namespace": "default", "name": "busybox", "apiVersion": "v1"},
    ),
    _event(
        "cluster",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/edit",
        TIM,
        {"resource": "clusterroles", "name": "edit", "apiGroup": "rbac.authorization.k8s.io", "apiVersion": "v1"},
    ),
    _event("nonResource", "/logs/kubelet.log", TIM, None),
    _event(
        "subresource",
        "/api/v1/namespaces/default/pods/busybox/log",
        TIM,
        {"resource": "pods", "namespace": "default", "name": "busybox", "subresource": "log", "apiVersion": "v1"},
    ),
    _event(
        "unauthenticated",
        "/api/v1/namespaces/default/pods/busybox",
        {},
        {"resource": "pods", "namespace": "default", "name": "busybox", "apiVersion": "v1"},
    ),
]
ORDER = [event["auditID"] for event in EVENTS]

RULE_YAML = {
    "default": "- level: Metadata",
    "create": "- level: Request\n  verbs: [create]",
    "tims": "- level: Metadata\n  users: [tim@k8s.io]",
    "humans": "- level: Metadata\n  userGroups: [humans]",
    "serviceAccounts": "- level: Request\n  userGroups: ['system:serviceaccounts']",
    "getPods": "- level: RequestResponse\n  verbs: [get]\n  resources: [{group: '', resources: [pods]}]",
    "getPodLogs": "- level: Request\n  verbs: [get]\n  resources: [{group: '', resources: [pods/log]}]",
    "getAny": "- level: Request\n  verbs: [get]\n  resources: [{group: '', resources: ['*']}]",
    "getAnyLog": "- level: Request\n  verbs: [get]\n  resources: [{group: '', resources: ['*/log']}]",
    "getPodSubs": "- level: Request\n  verbs: [get]\n  resources: [{group: '', resources: ['pods/*']}]",
    "getClusterRoles": (
        "- level: RequestResponse\n  verbs: [get]\n  namespaces: ['']\n"
        "  resources: [{group: rbac.authorization.k8s.io, resources: [clusterroles]}]"
    ),
    "getLogs": "- level: RequestResponse\n  verbs: [get]\n  nonResourceURLs: ['/logs*']",
    "getMetrics": "- level: Request\n  verbs: [get]\n  nonResourceURLs: [/metrics]",
    "clusterRoleEdit": (
        "- level: Request\n"
        "  resources: [{group: rbac.authorization.k8s.io, resources: [clusterroles], resourceNames: [edit]}]"
    ),
    "omitReceived": "- level: Request\n  omitStages: [RequestReceived]",
    "onlyPanic": "- level: Request\n  omitStages: [RequestReceived, ResponseStarted, ResponseComplete]",
}

# rules in order → expected level per request (namespaced, cluster, nonResource, subresource, unauthenticated)
EXPECTED_LEVELS: list[tuple[list[str], dict[str, str]]] = [
    (["default"], dict(namespaced="Metadata", cluster="Metadata", nonResource="Metadata", unauthenticated="Metadata")),
    (["create"], dict(namespaced="None", cluster="None", nonResource="None")),
    (["tims"], dict(namespaced="Metadata", cluster="Metadata", nonResource="Metadata", unauthenticated="None")),
    (["humans"], dict(namespaced="Metadata", cluster="Metadata", nonResource="Metadata", unauthenticated="None")),
    (["serviceAccounts"], dict(namespaced="None", cluster="None", nonResource="None")),
    (["getPods"], dict(namespaced="RequestResponse", cluster="None", nonResource="None", subresource="None")),
    (["getClusterRoles"], dict(namespaced="None", cluster="RequestResponse", nonResource="None")),
    (["getLogs"], dict(namespaced="None", cluster="None", nonResource="RequestResponse")),
    (["getMetrics"], dict(namespaced="None", cluster="None", nonResource="None")),
    (
        ["getMetrics", "serviceAccounts", "default"],
        dict(namespaced="Metadata", cluster="Metadata", nonResource="Metadata"),
    ),
    (["getMetrics", "getPods", "default"], dict(namespaced="RequestResponse", nonResource="Metadata")),
    (["getMetrics", "getClusterRoles", "default"], dict(cluster="RequestResponse")),
    (["getLogs", "getClusterRoles", "default"], dict(nonResource="RequestResponse")),
    (
        ["getPodLogs", "getPods"],
        dict(namespaced="RequestResponse", cluster="None", nonResource="None", subresource="Request"),
    ),
    (["clusterRoleEdit", "getClusterRoles"], dict(cluster="Request")),
    (["getAny"], dict(subresource="Request")),
    (["getAnyLog"], dict(subresource="Request", namespaced="None")),
    (["getPodSubs"], dict(subresource="Request", namespaced="Request")),
    (["tims", "default"], dict(unauthenticated="Metadata")),
    (["humans", "default"], dict(unauthenticated="Metadata")),
]


def _policy_text(rule_names: list[str], policy_stages: list[str]) -> str:
    header = "apiVersion: audit.k8s.io/v1\nkind: Policy\n"
    if policy_stages:
        header += f"omitStages: [{', '.join(policy_stages)}]\n"
    return header + "rules:\n" + "\n".join(RULE_YAML[name] for name in rule_names) + "\n"


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["policy", "explain", *args])


def _json_lines(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.ndjson"
    path.write_text("".join(json.dumps(event) + "\n" for event in EVENTS))
    return path


def _decide(tmp_path: Path, events_file: Path, rule_names: list[str], stages: list[str]) -> dict[str, dict[str, Any]]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(_policy_text(rule_names, stages))
    rows = _json_lines(_run(str(policy), "--events", str(events_file), "-o", "json"))
    assert [row["auditID"] for row in rows] == ORDER
    return {row["auditID"]: row for row in rows}


@pytest.mark.parametrize("policy_stages", [[], ["RequestReceived", "ResponseStarted"]])
@pytest.mark.parametrize(("rule_names", "levels"), EXPECTED_LEVELS)
def test_checker_cases_through_the_batch_form(
    tmp_path: Path, events_file: Path, rule_names: list[str], levels: dict[str, str], policy_stages: list[str]
) -> None:
    rows = _decide(tmp_path, events_file, rule_names, policy_stages)
    for request, level in levels.items():
        row = rows[request]
        assert row["level"] == level, (request, rule_names)
        assert row["omitStages"] == policy_stages
        assert row["omitManagedFields"] is False
        if level == "None":
            assert row["rule"] is None
        else:
            assert RULE_YAML[rule_names[row["rule"]]].startswith(f"- level: {level}")


@pytest.mark.parametrize(
    ("rule_names", "policy_stages", "expected"),
    [
        (["omitReceived", "getPods", "default"], [], ["RequestReceived"]),
        (["onlyPanic", "getPods", "default"], [], ["RequestReceived", "ResponseStarted", "ResponseComplete"]),
        (
            ["omitReceived", "getPods", "default"],
            ["RequestReceived", "ResponseStarted"],
            ["RequestReceived", "ResponseStarted"],
        ),
        (
            ["onlyPanic", "getPods", "default"],
            ["ResponseStarted", "Panic"],
            ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"],  # union, in stage order
        ),
    ],
)
def test_rule_and_policy_stages_union(
    tmp_path: Path, events_file: Path, rule_names: list[str], policy_stages: list[str], expected: list[str]
) -> None:
    rows = _decide(tmp_path, events_file, rule_names, policy_stages)
    for request in ("namespaced", "cluster", "nonResource"):
        assert rows[request]["level"] == "Request"
        assert rows[request]["rule"] == 0
        assert rows[request]["omitStages"] == expected


def test_later_rule_stages_do_not_apply(tmp_path: Path, events_file: Path) -> None:
    rows = _decide(
        tmp_path, events_file, ["default", "omitReceived", "getPods"], ["RequestReceived", "ResponseStarted"]
    )
    assert rows["nonResource"] == {
        "auditID": "nonResource",
        "level": "Metadata",
        "omitStages": ["RequestReceived", "ResponseStarted"],
        "omitManagedFields": False,
        "rule": 0,
    }


@pytest.mark.parametrize(
    ("policy_setting", "rule_setting", "expected"),
    [("false", None, False), ("true", None, True), ("true", "false", False), ("false", "true", True)],
)
def test_omit_managed_fields(tmp_path: Path, policy_setting: str, rule_setting: str | None, expected: bool) -> None:
    rule = "- level: RequestResponse\n  verbs: [get]"
    if rule_setting is not None:
        rule += f"\n  omitManagedFields: {rule_setting}"
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: {policy_setting}\nrules:\n{rule}\n"
    )
    events = tmp_path / "events.ndjson"
    events.write_text(json.dumps(_event("bare", "", {}, None)) + "\n")
    [row] = _json_lines(_run(str(policy), "--events", str(events), "-o", "json"))
    assert row == {
        "auditID": "bare",
        "level": "RequestResponse",
        "omitStages": [],
        "omitManagedFields": expected,
        "rule": 0,
    }


def test_no_match_reports_the_policy_defaults(tmp_path: Path, events_file: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: true\nomitStages: [Panic]\n"
        "rules:\n- level: Metadata\n  verbs: [delete]\n  omitManagedFields: false\n"
    )
    rows = _json_lines(_run(str(policy), "--events", str(events_file), "-o", "json"))
    assert rows[0] == {
        "auditID": "namespaced",
        "level": "None",
        "omitStages": ["Panic"],
        "omitManagedFields": True,
        "rule": None,
    }


def test_batch_reads_event_lists_and_gzip(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(_policy_text(["getLogs", "getPods", "default"], []))
    listing = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": EVENTS}
    plain = tmp_path / "list.json"
    plain.write_text(json.dumps(listing, indent=2))
    packed = tmp_path / "audit.log.gz"
    packed.write_bytes(gzip.compress(b"".join(json.dumps(event).encode() + b"\n" for event in EVENTS * 3)))
    from_list = _json_lines(_run(str(policy), "--events", str(plain), "-o", "json"))
    from_gzip = _json_lines(_run(str(policy), "--events", str(packed), "-o", "json"))
    assert [row["rule"] for row in from_list] == [1, 2, 0, 2, 1]
    assert from_gzip == from_list * 3


def test_batch_keeps_input_order_over_many_events(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(_policy_text(["getLogs", "getPods", "default"], []))
    events = tmp_path / "many.ndjson"
    lines = []
    for index in range(10_000):
        event = dict(EVENTS[index % len(EVENTS)], auditID=f"id-{index}")
        lines.append(json.dumps(event))
    events.write_text("\n".join(lines) + "\n")
    rows = _json_lines(_run(str(policy), "--events", str(events), "-o", "json"))
    assert [row["auditID"] for row in rows] == [f"id-{index}" for index in range(10_000)]
    assert [row["rule"] for row in rows[:5]] == [1, 2, 0, 2, 1]


def test_non_resource_path_is_the_request_uri_without_query(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
        "- level: None\n  nonResourceURLs: [/readyz]\n- level: Metadata\n"
    )
    events = tmp_path / "probe.json"
    events.write_text(json.dumps(_event("probe", "/readyz?verbose=1", {"username": "system:anonymous"}, None)))
    [row] = _json_lines(_run(str(policy), "--events", str(events), "-o", "json"))
    assert (row["level"], row["rule"]) == ("None", 0)


# ---- the single-request forms ----

EXEC_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", /version]
  - level: Metadata
    resources:
      - group: ""
        resources: [secrets]
  - level: RequestResponse
    verbs: [create]
    resources:
      - group: ""
        resources: [pods/exec, pods/attach]
  - level: Request
    omitManagedFields: true
    resources:
      - group: apps
        resources: [deployments]
"""


@pytest.fixture
def exec_policy(tmp_path: Path) -> Path:
    path = tmp_path / "audit-policy.yaml"
    path.write_text(EXEC_POLICY)
    return path


def test_flags_explain_the_deciding_rule(exec_policy: Path) -> None:
    result = _run(str(exec_policy), "--user", "jane", "--group", "dev", "--verb", "create", "--resource", "pods/exec")
    assert result.exit_code == 0, result.output
    assert "level:             RequestResponse" in result.output
    assert "omitted stages:    RequestReceived" in result.output
    assert "omitManagedFields: false" in result.output
    assert f"rule 2 ({exec_policy}:11, level RequestResponse)" in result.output
    assert 'verbs [create] includes "create"' in result.output
    assert "does not include" not in result.output  # earlier rules only with -v


def test_verbose_shows_why_earlier_rules_did_not_match(exec_policy: Path) -> None:
    args = ["--user", "jane", "--verb", "get", "--resource", "deployments", "--api-group", "apps", "-n", "prod", "-v"]
    result = _run(str(exec_policy), *args)
    assert result.exit_code == 0, result.output
    assert "level:             Request" in result.output
    assert "omitManagedFields: true" in result.output
    assert "nonResourceURLs rules never match resource requests" in result.output
    assert 'resources[0]: group "" ≠ request group "apps"' in result.output
    assert 'verbs [create] does not include "get"' in result.output


def test_path_without_resource_is_a_non_resource_request(exec_policy: Path) -> None:
    result = _run(
        str(exec_policy), "--user", "system:anonymous", "--verb", "get", "--path", "/healthz/etcd", "-o", "json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "auditID": None,
        "level": "None",
        "omitStages": ["RequestReceived"],
        "omitManagedFields": False,
        "rule": 0,
    }


def test_no_rule_matches(exec_policy: Path) -> None:
    result = _run(str(exec_policy), "--verb", "get", "--resource", "pods", "-n", "default", "-v")
    assert result.exit_code == 0, result.output
    assert "no rule matched" in result.output
    assert "why no rule matched:" in result.output


def test_one_event_file(exec_policy: Path, tmp_path: Path) -> None:
    event = _event("abc-123", "/api/v1/namespaces/prod/secrets/db", {"username": "jane"}, None)
    event["objectRef"] = {"resource": "secrets", "namespace": "prod", "name": "db", "apiVersion": "v1"}
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event, indent=2))
    result = _run(str(exec_policy), "--event", str(path), "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["auditID"] == "abc-123"
    assert json.loads(result.stdout)["rule"] == 1
    text = _run(str(exec_policy), "--event", str(path))
    assert 'resources[0]: "secrets" matches "secrets"' in text.output


# ---- errors: one clear line, never a traceback ----


def test_invalid_policy_prints_its_errors(tmp_path: Path, events_file: Path) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n- verbs: [get]\n")
    result = _run(str(policy), "--events", str(events_file), "-o", "json")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert 'rules[0].level: Unsupported value: "Loud"' in lines[0]
    assert f"{policy}:4" in lines[0]
    assert "rules[1].level: Required value" in lines[1]


def test_malformed_event_names_file_line_and_field(tmp_path: Path, exec_policy: Path) -> None:
    events = tmp_path / "broken.ndjson"
    good = json.dumps(EVENTS[0])
    bad = dict(EVENTS[2], verb=7)
    events.write_text(f"{good}\n{json.dumps(bad)}\n")
    result = _run(str(exec_policy), "--events", str(events), "-o", "json")
    assert result.exit_code == 0  # the good event is decided; the bad one is reported, as every command does
    assert [row["auditID"] for row in _json_lines(result)] == [EVENTS[0]["auditID"]]
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"warning: refused {events}:2: ")
    assert "verb" in line
    assert "Traceback" not in result.output
    assert _run(str(exec_policy), "--events", str(events), "-o", "json", "--strict").exit_code == 1


def test_not_json_at_all(tmp_path: Path, exec_policy: Path) -> None:
    events = tmp_path / "garbage.log"
    events.write_bytes(b"\x00\x01 not an audit log\n")
    result = _run(str(exec_policy), "--events", str(events))
    assert result.exit_code == 2
    error, hint = result.stderr.strip().splitlines()
    assert error == f"error: {events}: cannot tell the format of this input"
    assert hint.strip().startswith("hint: pass --format")


def test_request_flags_and_events_are_exclusive(exec_policy: Path, events_file: Path) -> None:
    result = _run(str(exec_policy), "--events", str(events_file), "--verb", "get")
    assert result.exit_code == 2
    assert "not several" in result.stderr


def test_a_request_needs_a_target(exec_policy: Path) -> None:
    result = _run(str(exec_policy), "--user", "jane", "--verb", "get")
    assert result.exit_code == 2
    assert "--resource" in result.stderr


def test_help_has_examples() -> None:
    result = _run("--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output
    assert "--events audit.log -o json" in result.output


def test_the_installed_command(tmp_path: Path, exec_policy: Path, events_file: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from kubetrail.cli.main import main; main()",
            "policy",
            "explain",
            str(exec_policy),
            "--events",
            str(events_file),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert [json.loads(line)["auditID"] for line in completed.stdout.splitlines()] == ORDER


def test_events_missing_fields_a_decision_does_not_use_are_still_decided(tmp_path: Path, exec_policy: Path) -> None:
    events = tmp_path / "sparse.ndjson"
    complete = _event("full", "/api/v1/namespaces/prod/secrets", {"username": "jane"}, None)
    complete["objectRef"] = {"resource": "secrets", "namespace": "prod"}
    sparse = {"auditID": "sparse", "verb": "get", "requestURI": "/version"}  # no level, stage or user
    no_user = {"auditID": "no-user", "verb": "create", "objectRef": {"resource": "pods", "subresource": "exec"}}
    events.write_text("\n".join(json.dumps(item) for item in (complete, sparse, no_user)) + "\n")
    rows = _json_lines(_run(str(exec_policy), "--events", str(events), "-o", "json"))
    assert [(row["auditID"], row["rule"]) for row in rows] == [("full", 1), ("sparse", 0), ("no-user", 2)]


def test_truncated_gzip_of_sparse_events_is_one_clear_line(tmp_path: Path, exec_policy: Path) -> None:
    events = tmp_path / "cut.log.gz"
    data = gzip.compress(b'{"auditID": "x", "verb": "get", "requestURI": "/healthz"}\n' * 500)
    events.write_bytes(data[: len(data) // 2])
    result = _run(str(exec_policy), "--events", str(events), "-o", "json")
    assert result.exit_code == 0
    decided = _json_lines(result)
    assert 0 < len(decided) < 500  # what was before the damage is decided
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"warning: refused {events}:{len(decided) + 1}: ")
    assert "truncated" in line
    assert _run(str(exec_policy), "--events", str(events), "-o", "json", "--strict").exit_code == 1
    events.write_bytes(data[:14])
    result = _run(str(exec_policy), "--events", str(events), "-o", "json")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {events}: cannot read it: gzip data is truncated")


def test_a_null_user_is_an_unauthenticated_request(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(_policy_text(["humans", "default"], []))
    events = tmp_path / "anonymous.ndjson"
    events.write_text(json.dumps(dict(EVENTS[0], auditID="nobody", user=None)) + "\n")
    [row] = _json_lines(_run(str(policy), "--events", str(events), "-o", "json"))
    assert (row["level"], row["rule"]) == ("Metadata", 1)
