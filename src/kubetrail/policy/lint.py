"""Lint an audit policy the apiserver accepts: findings about what it records, leaks, drops or never uses.

Every finding carries a severity, a stable code, the rule index, the source line and a concrete fix.
Checks that depend on what the policy decides evaluate representative requests with the evaluator,
so "a catch-all at Request level records Secret bodies" is found even though no rule names secrets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from kubetrail.model.event import Level, Stage
from kubetrail.policy.issues import PolicyIssue, Severity
from kubetrail.policy.lint_context import LintContext, is_catch_all
from kubetrail.policy.lint_exposure import check_pod_sessions, check_sensitive_bodies
from kubetrail.policy.lint_groups import check_all_groups, check_resource_groups
from kubetrail.policy.lint_noise import check_noise
from kubetrail.policy.lint_shadow import check_shadowed
from kubetrail.policy.load import LoadedPolicy

Check = Callable[[LintContext], list[PolicyIssue]]

CODES = (
    "unknown-field",
    "duplicate-field",
    "extra-documents",
    "secret-body-recorded",
    "configmap-body-recorded",
    "token-body-recorded",
    "no-catch-all",
    "request-received-kept",
    "noise-not-dropped",
    "shadowed-rule",
    "body-level-on-urls",
    "wrong-api-group",
    "unknown-resource",
    "all-groups-needs-1.36",
    "pods-subresources-uncovered",
)
_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def check_load_warnings(ctx: LintContext) -> list[PolicyIssue]:
    """The loader's warnings; unknown fields become errors (a mis-indented `verbs:` widens a rule)."""
    findings: list[PolicyIssue] = []
    for warning in ctx.loaded.warnings:
        if warning.code == "unknown-field":
            warning = replace(
                warning,
                severity=Severity.ERROR,
                message=f"{warning.message}: the apiserver ignores it"
                + (", so the rule may match more than it reads" if warning.rule is not None else ""),
                hint="fix the spelling or the indentation: a selector outside its rule restricts nothing",
            )
        findings.append(warning)
    return findings


def check_catch_all(ctx: LintContext) -> list[PolicyIssue]:
    """Requests no rule matches are not audited at all; a final catch-all makes the default explicit."""
    if any(is_catch_all(rule) for rule in ctx.rules):
        return []
    last = len(ctx.rules) - 1
    return [
        ctx.finding(
            "no-catch-all",
            Severity.WARNING,
            "no catch-all rule: requests that match no rule are not audited at all",
            'end the rules with "- level: Metadata" (or "- level: None" to make not auditing the rest explicit)',
            rule=last,
        )
    ]


def check_request_received(ctx: LintContext) -> list[PolicyIssue]:
    """RequestReceived events double the volume and carry nothing the ResponseComplete event lacks."""
    policy = ctx.loaded.policy
    if Stage.REQUEST_RECEIVED.value in policy.omitStages:
        return []
    keeping = [
        index
        for index, rule in enumerate(ctx.rules)
        if rule.level != Level.NONE.value and Stage.REQUEST_RECEIVED.value not in rule.omitStages
    ]
    if not keeping:
        return []
    shown = ", ".join(str(index) for index in keeping[:8]) + (", …" if len(keeping) > 8 else "")
    return [
        ctx.finding(
            "request-received-kept",
            Severity.WARNING,
            f"RequestReceived is not omitted (rules {shown}): every request is logged once more when it "
            "arrives, with nothing the ResponseComplete event lacks",
            'add "omitStages: [RequestReceived]" at the top level of the policy',
            rule=keeping[0],
        )
    ]


def check_url_body_levels(ctx: LintContext) -> list[PolicyIssue]:
    """Request/RequestResponse on non-resource URLs: those requests have no bodies, so it acts as Metadata."""
    findings: list[PolicyIssue] = []
    for index, rule in enumerate(ctx.rules):
        if rule.nonResourceURLs and not rule.resources and rule.level in (Level.REQUEST, Level.REQUEST_RESPONSE):
            findings.append(
                ctx.finding(
                    "body-level-on-urls",
                    Severity.WARNING,
                    f"level {rule.level} on nonResourceURLs has no effect: non-resource requests "
                    "(such as /healthz or /version) have no bodies to record",
                    f"set rule {index}'s level to Metadata (or None to drop these requests)",
                    rule=index,
                    path=("rules", index, "level"),
                )
            )
    return findings


CHECKS: tuple[Check, ...] = (
    check_load_warnings,
    check_sensitive_bodies,
    check_catch_all,
    check_request_received,
    check_noise,
    check_shadowed,
    check_url_body_levels,
    check_resource_groups,
    check_all_groups,
    check_pod_sessions,
)


def lint_policy(loaded: LoadedPolicy) -> list[PolicyIssue]:
    """Every lint finding for a loaded policy, in source order (policy-wide findings first)."""
    ctx = LintContext(loaded)
    findings = [finding for check in CHECKS for finding in check(ctx)]
    return sorted(
        findings,
        key=lambda f: (f.line or 0, -1 if f.rule is None else f.rule, _SEVERITY_ORDER[f.severity], f.code),
    )


def exit_code(findings: list[PolicyIssue]) -> int:
    """0 when clean (or only informational findings), 1 with warnings, 2 with errors."""
    severities = {finding.severity for finding in findings}
    if Severity.ERROR in severities:
        return 2
    return 1 if Severity.WARNING in severities else 0
