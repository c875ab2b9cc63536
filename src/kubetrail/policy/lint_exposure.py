"""Lint checks about what reaches the audit log: sensitive bodies kept, pod exec sessions lost.

Both are decided by evaluating representative requests, so a finding names the request and the
rule that decides it — including broad rules (a catch-all, a whole API group) that cover a
resource without naming it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubetrail.model.event import Level
from kubetrail.policy.issues import PolicyIssue, Severity
from kubetrail.policy.lint_context import (
    APP_SERVICE_ACCOUNT,
    CONTROLLER_MANAGER,
    KUBELET,
    ORDINARY_USER,
    LintContext,
    Probe,
    recorded_body_level,
    records_anything,
    resource_probe,
)
from kubetrail.policy.match import group_matches

_NAMELESS_VERBS = frozenset({"create", "list"})  # the request URL names no object, so resourceNames never match


@dataclass(frozen=True)
class SensitiveResource:
    """A resource whose bodies hold credentials, and which verbs carry them where."""

    code: str
    severity: Severity
    noun: str
    group: str
    resource: str
    subresource: str
    namespaced: bool
    request_verbs: tuple[str, ...]
    response_verbs: tuple[str, ...]
    contents: str

    @property
    def spec(self) -> str:
        """How a rule names it: `secrets`, `serviceaccounts/token`."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


_READ_WRITE = ("get", "list", "create", "update", "patch", "delete")
SENSITIVE_RESOURCES = (
    SensitiveResource(
        "secret-body-recorded", Severity.ERROR, "Secret", "", "secrets", "", True,
        ("create", "update", "patch"), _READ_WRITE, "the secret's data",
    ),
    SensitiveResource(
        "configmap-body-recorded", Severity.WARNING, "ConfigMap", "", "configmaps", "", True,
        ("create", "update", "patch"), _READ_WRITE, "the configmap's data, which often holds credentials",
    ),
    SensitiveResource(
        "token-body-recorded", Severity.ERROR, "TokenReview", "authentication.k8s.io", "tokenreviews", "", False,
        ("create",), ("create",), "the bearer token under review",
    ),
    SensitiveResource(
        "token-body-recorded", Severity.ERROR, "TokenRequest", "", "serviceaccounts", "token", True,
        (), ("create",), "the newly issued service account token",
    ),
)  # fmt: skip


def _leak(kind: SensitiveResource, verb: str, level: Level) -> str:
    """Which body of a `verb` request at `level` holds the sensitive contents ('' when none)."""
    if verb in kind.request_verbs and level.at_least(Level.REQUEST):
        return "request body"
    if verb in kind.response_verbs and level is Level.REQUEST_RESPONSE:
        return "response body"
    return ""


def _sensitive_probes(ctx: LintContext, kind: SensitiveResource) -> list[Probe]:
    requesters = [ORDINARY_USER, APP_SERVICE_ACCOUNT, CONTROLLER_MANAGER, KUBELET]
    namespaces = ["team-a", "kube-system"] if kind.namespaced else [""]
    verbs = dict.fromkeys((*kind.request_verbs, *kind.response_verbs))
    probes: dict[Probe, None] = {}
    for requester, namespace, name in ctx.probe_space(requesters, namespaces, ["app-credentials"]):
        for verb in verbs:
            probe = resource_probe(
                requester,
                verb,
                kind.resource,
                group=kind.group,
                subresource=kind.subresource,
                namespace=namespace,
                name="" if verb in _NAMELESS_VERBS else name,
            )
            probes[probe] = None
    return list(probes)


def _names_directly(ctx: LintContext, index: int, kind: SensitiveResource) -> bool:
    entries = ctx.rules[index].resources
    return any(group_matches(entry.group, kind.group) and kind.spec in entry.resources for entry in entries)


def check_sensitive_bodies(ctx: LintContext) -> list[PolicyIssue]:
    """Secrets, ConfigMaps and tokens recorded with their bodies, directly or through a broader rule."""
    findings: list[PolicyIssue] = []
    for kind in SENSITIVE_RESOURCES:
        first: dict[int, tuple[Probe, Level, str]] = {}
        for probe in _sensitive_probes(ctx, kind):
            decision = ctx.decide(probe)
            level = recorded_body_level(decision)
            body = _leak(kind, probe.attrs.verb, level)
            if body and decision.rule_index is not None and decision.rule_index not in first:
                first[decision.rule_index] = (probe, level, body)
        for index, (probe, level, body) in sorted(first.items()):
            findings.append(_sensitive_finding(ctx, kind, index, probe, level, body))
    return findings


def _sensitive_finding(
    ctx: LintContext, kind: SensitiveResource, index: int, probe: Probe, level: Level, body: str
) -> PolicyIssue:
    quoted_group = f'"{kind.group}"'
    if _names_directly(ctx, index, kind):
        how = f"rule {index} names {kind.spec}"
        hint = (
            f'record {kind.spec} at level Metadata only: list it in a "- level: Metadata" rule before rule {index}, '
            f"or lower rule {index} to Metadata"
        )
    else:
        how = f"rule {index} also matches {kind.spec}"
        hint = (
            f'add before rule {index}: "- level: Metadata" with resources: '
            f'[{{group: {quoted_group}, resources: ["{kind.spec}"]}}]'
        )
    message = (
        f'{kind.noun} contents reach the audit log: {how}, so "{probe.text}" is recorded at {level}, '
        f"whose {body} holds {kind.contents}"
    )
    return ctx.finding(kind.code, kind.severity, message, hint, rule=index, path=("rules", index, "level"))


_POD_SESSIONS = ("exec", "attach", "portforward")


def check_pod_sessions(ctx: LintContext) -> list[PolicyIssue]:
    """Pods are audited but `kubectl exec/attach/port-forward` into them is not.

    A rule naming `pods` does not match its subresources, so exec sessions silently fall to a
    later rule. Only "not recorded at all" is reported: the apiserver keeps no request or response
    body for these connect requests, and the command is in the requestURI recorded at Metadata.
    """
    missing: dict[int | None, tuple[int | None, Probe, Level, list[str]]] = {}
    space = ctx.probe_space([ORDINARY_USER, APP_SERVICE_ACCOUNT], ["team-a"], ["web-0"])
    for requester, namespace, name in space:
        pods = ctx.decide(resource_probe(requester, "create", "pods", namespace=namespace))
        if not records_anything(pods):
            continue
        for subresource in _POD_SESSIONS:
            for verb in ("create", "get"):
                probe = resource_probe(requester, verb, "pods", subresource=subresource, namespace=namespace, name=name)
                decision = ctx.decide(probe)
                if records_anything(decision):
                    continue
                entry = missing.setdefault(decision.rule_index, (pods.rule_index, probe, pods.level, []))
                if subresource not in entry[3]:
                    entry[3].append(subresource)
    findings: list[PolicyIssue] = []
    for deciding, (pods_rule, probe, pods_level, subresources) in missing.items():
        listed = ", ".join(f"pods/{name}" for name in subresources)
        if deciding is None:
            where = "no rule matches them"
            target = pods_rule
            hint = (
                f'add {listed} to rule {pods_rule}\'s resources ("pods" alone does not match subresources), '
                "or add a rule recording them at Metadata or above"
            )
        else:
            where = f"rule {deciding} drops them"
            target = deciding
            hint = f"add a rule recording {listed} at Metadata or above before rule {deciding}"
        message = (
            f'{listed} are not recorded ({where}, e.g. "{probe.text}") while rule {pods_rule} records pods at '
            f"{pods_level}: exec, attach and port-forward sessions leave no trace"
        )
        findings.append(ctx.finding("pods-subresources-uncovered", Severity.WARNING, message, hint, rule=target))
    return findings
