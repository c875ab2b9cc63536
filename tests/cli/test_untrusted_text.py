"""Untrusted text (event values, rule and policy files, file names, warnings) is printed as it is, never as rich
markup: square brackets must neither crash a command (`MarkupError`) nor vanish, restyle or become a link."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from kubetrail.cli.generate import with_progress
from kubetrail.cli.main import cli
from kubetrail.emit.generator import GeneratorConfig, generate

# A closing tag nothing opened (a MarkupError), a style and a hyperlink (both silently swallowed).
MARKUP = "[/x][red]boom[/][link=http://evil]x[/link]"
USER = f"mallory{MARKUP}"
NAMESPACE = f"ns{MARKUP}"
URI = f"/api/v1/namespaces/{NAMESPACE}/secrets/db"
RULE = "Secret read [/x] [red]boom[/] [link=http://evil]x[/link]"
RULE_OUTPUT = "secret read [red]boom[/] (user=%ka.user.name name=%jevt.value[/responseObject/metadata/name])"
# A path whose directories spell a closing tag, and a file name that is an opening one.
POLICY_PATH = "a[/x]/[bold]p.yaml"
UNKNOWN_FIELD = "x[/y]"

T0 = "2026-03-19T10:00:00.000000Z"
T1 = "2026-03-19T10:00:00.010000Z"
T2 = "2026-03-19T10:01:00.000000Z"


def _event(audit: str, stage: str, user: str, namespace: str, uri: str, stamp: str) -> dict[str, Any]:
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": audit,
        "stage": stage,
        "requestURI": uri,
        "verb": "get",
        "user": {"username": user, "groups": ["system:authenticated"]},
        "objectRef": {"resource": "secrets", "namespace": namespace, "name": "db", "apiVersion": "v1"},
        "requestReceivedTimestamp": T0,
        "stageTimestamp": stamp,
    }
    if stage == "ResponseComplete":
        event["responseStatus"] = {"metadata": {}, "code": 200}
        event["responseObject"] = {"kind": "Secret", "metadata": {"name": "db"}, "data": {"k": "dg=="}}
    return event


def _write_inputs(root: Path) -> None:
    """`audit.log` (an evil and a plain secret read), `rules.yaml`, the evil policy and a plain one."""
    events = [
        _event("a", "RequestReceived", USER, NAMESPACE, URI, T0),
        _event("a", "ResponseComplete", USER, NAMESPACE, URI, T1),
        _event("b", "RequestReceived", "jane", "prod", "/api/v1/namespaces/prod/secrets/db", T0),
        _event("b", "ResponseComplete", "jane", "prod", "/api/v1/namespaces/prod/secrets/db", T2),
    ]
    (root / "audit.log").write_text("".join(json.dumps(event) + "\n" for event in events))
    (root / "rules.yaml").write_text(
        f"""
- rule: {json.dumps(RULE)}
  desc: someone read a secret and got its data back
  condition: ka.verb=get and ka.target.resource=secrets and ka.resp.name exists
  output: {json.dumps(RULE_OUTPUT)}
  priority: WARNING
  source: k8s_audit
"""
    )
    policy = root / POLICY_PATH
    policy.parent.mkdir(parents=True)
    policy.write_text(
        f"""apiVersion: audit.k8s.io/v1
kind: Policy
{json.dumps(UNKNOWN_FIELD)}: 1
rules:
  - level: Metadata
    users: [{json.dumps(USER)}]
  - level: RequestResponse
"""
    )
    (root / "plain.yaml").write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: RequestResponse\n")


def _run(*args: str) -> Result:
    """Run the command (wide, so no table folds a value); it must end without a traceback."""
    result = CliRunner(env={"COLUMNS": "250"}).invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output and "MarkupError" not in result.output, result.output
    return result


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)  # relative paths keep the printed lines short
    return tmp_path


def test_policy_simulate_prints_users_rules_paths_and_warnings_verbatim(inputs: Path) -> None:
    result = _run("policy", "simulate", POLICY_PATH, "audit.log", "--rules", "rules.yaml")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"policy: {POLICY_PATH}  (2 rules)" in out
    assert f"users={USER}" in out  # the selectors of the per-rule table
    assert USER in out.split("noisiest", 1)[1]  # the noisy callers table
    coverage = out.split("Detection coverage lost (rules.yaml)", 1)[1]
    assert RULE in coverage
    assert f"users={USER})" in coverage  # the policy rule behind the loss
    assert f"warning: {POLICY_PATH}:3: {UNKNOWN_FIELD}: unknown field" in result.stderr


def test_policy_simulate_names_a_lost_jevt_field_verbatim(inputs: Path) -> None:
    (inputs / "fields.yaml").write_text(
        "- rule: Secret name\n  desc: d\n  condition: ka.verb=get and ka.target.resource=secrets\n"
        "  output: read %jevt.value[/responseObject/metadata/name]\n  priority: NOTICE\n  source: k8s_audit\n"
    )
    result = _run("policy", "simulate", POLICY_PATH, "audit.log", "--rules", "fields.yaml")
    assert result.exit_code == 0, result.output
    assert "jevt.value[/responseObject/metadata/name] → <NA>" in result.stdout


def test_policy_simulate_on_generated_attacks_under_the_minimal_preset(tmp_path: Path) -> None:
    """The reported crash: Falco's `jevt.value[/requestObject/spec/namespace]` in the coverage table."""
    log, policy = str(tmp_path / "audit.log"), str(tmp_path / "minimal.yaml")
    generated = _run("generate", "--duration", "300", "--rate", "20", "--scenario", "all", "-o", log)
    assert generated.exit_code == 0, generated.output
    made = _run("policy", "generate", "--preset", "minimal", "-o", policy)
    assert made.exit_code == 0, made.output
    result = _run("policy", "simulate", policy, log, "--top", "3")
    assert result.exit_code == 0, result.output
    assert "jevt.value[/requestObject/spec/namespace] → <NA>" in result.stdout
    assert "rules fired on the full log" in result.stdout  # the report's last line: it ran to the end


def test_policy_diff_prints_paths_callers_and_rules_verbatim(inputs: Path) -> None:
    result = _run("policy", "diff", POLICY_PATH, "plain.yaml", "audit.log", "--rules", "rules.yaml")
    assert result.exit_code == 1, result.output  # the policies differ
    out = result.stdout
    assert f"A: {POLICY_PATH}  writes" in out
    changed = out.split("Recorded by both at different levels", 1)[1]
    assert USER in changed and "Metadata" in changed
    assert RULE in out.split("Detection coverage differences", 1)[1]


def test_detect_summary_table_prints_rule_names_verbatim(inputs: Path) -> None:
    result = _run("detect", "audit.log", "--rules", "rules.yaml")
    assert result.exit_code == 0, result.output
    assert f"secret read [red]boom[/] (user={USER} name=db)" in result.stdout  # Falco's line, as before
    assert RULE in result.stderr.split("Alerts by rule", 1)[1]


def test_query_table_prints_event_values_verbatim(inputs: Path) -> None:
    result = _run("query", "--file", "audit.log", "verb=get", "--fields", "user,namespace,uri")
    assert result.exit_code == 0, result.output
    for value in (USER, NAMESPACE, URI):
        assert value in result.stdout


def test_demo_prints_the_policy_path_warnings_and_selectors_verbatim(inputs: Path) -> None:
    result = _run("demo", "--no-serve", "--policy", POLICY_PATH, "--duration", "30", "--rate", "2", "--no-attacks")
    assert result.exit_code == 0, result.output
    assert f"policy: {POLICY_PATH}  (2 rules)" in result.stdout
    assert f"users={USER}" in result.stdout
    assert f"warning: {POLICY_PATH}:3: {UNKNOWN_FIELD}: unknown field" in result.stderr


def test_progress_label_is_plain_text() -> None:
    """A progress description (here a webhook URL) is printed as given, even on a terminal."""
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=200, color_system=None)
    config = GeneratorConfig(duration=5, rate=1, scenarios=())
    label = f"posting to http://127.0.0.1:1/audit/{MARKUP}"
    assert sum(1 for _ in with_progress(generate(config), config, console, label)) > 0
    assert label in buffer.getvalue()
