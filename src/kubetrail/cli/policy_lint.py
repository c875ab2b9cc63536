"""`kubetrail policy lint FILE`: findings about what a policy records, leaks, drops or never uses."""

from __future__ import annotations

import sys

import click
import msgspec

from kubetrail.policy import PolicyError, PolicyIssue, load_policy
from kubetrail.policy.lint import CODES, exit_code, lint_policy


def _as_record(issue: PolicyIssue) -> dict[str, object]:
    return {
        "file": issue.source,
        "line": issue.line,
        "severity": issue.severity.value,
        "code": issue.code,
        "rule": issue.rule,
        "field": issue.field,
        "message": issue.message,
        "hint": issue.hint,
    }


def _as_text(issue: PolicyIssue) -> str:
    rule = f" [rule {issue.rule}]" if issue.rule is not None else ""
    code = f" {issue.code}" if issue.code else ""
    shows_field = issue.field and issue.code not in CODES and not issue.message.startswith(issue.field)
    where = f" {issue.field}:" if shows_field else ""
    text = f"{issue.location}: {issue.severity.value}{code}{rule}:{where} {issue.message}"
    if issue.hint:
        text += f"\n  hint: {issue.hint}"
    return text


def _summary(findings: list[PolicyIssue]) -> str:
    if not findings:
        return "clean: no findings"
    counts = {severity: 0 for severity in ("error", "warning", "info")}
    for finding in findings:
        counts[finding.severity.value] += 1
    parts = [f"{count} {name}{'s' if count != 1 else ''}" for name, count in counts.items() if count]
    return ", ".join(parts)


@click.command(name="lint")
@click.argument("policy_file", type=click.Path())
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people; json prints one JSON array of findings.",
)
def lint_command(policy_file: str, output: str) -> None:
    """Lint POLICY_FILE: Secret bodies leaked, noise kept, rules shadowed or misnamed, exec unrecorded.

    Each finding has a severity, a stable code, the rule index, the file line and a fix.
    Checks about what gets recorded evaluate representative requests (a user writing a Secret,
    a kubelet renewing its lease, a health probe, ...) with the apiserver's matching rules and
    name the rule that decides them.

    \b
    Exit code: 0 clean (or only info), 1 warnings, 2 errors or a policy that does not load.
    JSON output: one array; each element has file, line, severity, code, rule, field, message, hint.

    \b
    Examples:
      kubetrail policy lint /etc/kubernetes/audit-policy.yaml
      kubetrail policy lint audit-policy.yaml -o json | jq '.[] | select(.severity == "error")'
    """
    loaded = True
    try:
        findings = lint_policy(load_policy(policy_file))
        code = exit_code(findings)
    except PolicyError as error:
        findings = error.issues
        code = 2
        loaded = False
    if output == "json":
        sys.stdout.write(msgspec.json.encode([_as_record(issue) for issue in findings]).decode() + "\n")
    else:
        for issue in findings:
            click.echo(_as_text(issue))
        if loaded or len(findings) > 1:
            click.echo(_summary(findings))
    sys.exit(code)
