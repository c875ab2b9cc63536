"""Shared pieces of the lint checks: the policy under review, finding construction, probe requests.

Several checks decide by evaluating representative requests (a probe) with the real evaluator,
so every finding about what gets recorded names a concrete request and the rule that decided it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice, product

from kubetrail.model.event import Level, Stage
from kubetrail.model.policy import PolicyRule
from kubetrail.policy.attributes import RequestAttributes
from kubetrail.policy.evaluate import AuditDecision, CompiledPolicy, compile_policy
from kubetrail.policy.issues import PolicyIssue, Severity
from kubetrail.policy.load import LoadedPolicy
from kubetrail.policy.source import FieldPath, format_field_path

AUTHENTICATED = "system:authenticated"
_WITNESSES_PER_RULE = 64


@dataclass(frozen=True, slots=True)
class Requester:
    """Who sends a probe request: a user name and the groups the authenticator gave it."""

    user: str
    groups: tuple[str, ...] = (AUTHENTICATED,)


ORDINARY_USER = Requester("jane@example.com")
APP_SERVICE_ACCOUNT = Requester(
    "system:serviceaccount:team-a:app",
    ("system:serviceaccounts", "system:serviceaccounts:team-a", AUTHENTICATED),
)
CONTROLLER_MANAGER = Requester("system:kube-controller-manager")
SCHEDULER = Requester("system:kube-scheduler")
KUBELET = Requester("system:node:node-1", ("system:nodes", AUTHENTICATED))
KUBE_PROXY = Requester("system:kube-proxy")
ANONYMOUS = Requester("system:anonymous", ("system:unauthenticated",))
PROMETHEUS = Requester(
    "system:serviceaccount:monitoring:prometheus",
    ("system:serviceaccounts", "system:serviceaccounts:monitoring", AUTHENTICATED),
)


@dataclass(frozen=True, slots=True)
class Probe:
    """A representative request and how to describe it in a finding."""

    attrs: RequestAttributes

    @property
    def text(self) -> str:
        """E.g. `create secrets in namespace team-a by jane@example.com`."""
        a = self.attrs
        if not a.is_resource_request:
            return f"{a.verb} {a.path} by {a.user}"
        target = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        if a.api_group:
            target += f".{a.api_group}"
        if a.name and a.verb not in ("create", "list", "watch"):
            target += f" {a.name}"
        where = f" in namespace {a.namespace}" if a.namespace else ""
        return f"{a.verb} {target}{where} by {a.user}"


def resource_probe(
    requester: Requester,
    verb: str,
    resource: str,
    *,
    group: str = "",
    subresource: str = "",
    namespace: str = "",
    name: str = "",
) -> Probe:
    """A probe for a resource request."""
    return Probe(
        RequestAttributes(
            user=requester.user,
            groups=requester.groups,
            verb=verb,
            is_resource_request=True,
            namespace=namespace,
            api_group=group,
            resource=resource,
            subresource=subresource,
            name=name,
        )
    )


def url_probe(requester: Requester, path: str, verb: str = "get") -> Probe:
    """A probe for a non-resource request such as `/healthz`."""
    return Probe(
        RequestAttributes(user=requester.user, groups=requester.groups, verb=verb, is_resource_request=False, path=path)
    )


def records_anything(decision: AuditDecision) -> bool:
    """True when the decision writes at least one normal event (Panic alone does not count)."""
    if decision.level is Level.NONE:
        return False
    stages = (Stage.REQUEST_RECEIVED, Stage.RESPONSE_STARTED, Stage.RESPONSE_COMPLETE)
    return any(stage not in decision.omit_stages for stage in stages)


def recorded_body_level(decision: AuditDecision) -> Level:
    """The level bodies are kept at: bodies travel in ResponseComplete events, so omitting it keeps none."""
    if Stage.RESPONSE_COMPLETE in decision.omit_stages:
        return Level.NONE
    return decision.level


def is_catch_all(rule: PolicyRule) -> bool:
    """A rule with no selector matches every request."""
    return not (
        rule.users or rule.userGroups or rule.verbs or rule.resources or rule.namespaces or rule.nonResourceURLs
    )


@dataclass
class LintContext:
    """The policy under review, its compiled form, and a factory for findings located in its source."""

    loaded: LoadedPolicy
    compiled: CompiledPolicy = field(init=False)

    def __post_init__(self) -> None:
        self.compiled = compile_policy(self.loaded.policy)

    @property
    def rules(self) -> list[PolicyRule]:
        return self.loaded.policy.rules

    def decide(self, probe: Probe) -> AuditDecision:
        """What the policy decides for a probe."""
        return self.compiled.evaluate(probe.attrs)

    def probe_space(
        self, requesters: list[Requester], namespaces: list[str], names: list[str]
    ) -> list[tuple[Requester, str, str]]:
        """(requester, namespace, object name) triples to probe with: the base ones, plus per rule the
        combinations of the users, groups, namespaces and resourceNames it lists, so that requests
        only that rule (or an earlier one) can decide are probed too. `namespaces == [""]` means
        cluster-scoped."""
        space = dict.fromkeys(product(requesters, namespaces, names))
        cluster_scoped = namespaces == [""]
        for rule in self.rules:
            users = rule.users or [requesters[0].user]
            groups: list[str | None] = [*rule.userGroups] or [None]
            rule_namespaces = (
                namespaces[:1] if cluster_scoped else [ns for ns in rule.namespaces if ns] or namespaces[:1]
            )
            rule_names = [name for entry in rule.resources for name in entry.resourceNames] or names[:1]
            combinations = product(users, groups, rule_namespaces, rule_names)
            for user, group, namespace, name in islice(combinations, _WITNESSES_PER_RULE):
                requester = Requester(user, (group, AUTHENTICATED) if group else (AUTHENTICATED,))
                space[(requester, namespace, name)] = None
        return list(space)

    def finding(
        self,
        code: str,
        severity: Severity,
        message: str,
        hint: str,
        *,
        rule: int | None = None,
        path: FieldPath | None = None,
    ) -> PolicyIssue:
        """A finding located at `path` (or at rule `rule`, or nowhere in particular)."""
        if path is None and rule is not None:
            path = ("rules", rule)
        line = self.loaded.line_of(path) if path is not None else None
        return PolicyIssue(
            severity=severity,
            field=format_field_path(path) if path else "",
            message=message,
            source=self.loaded.source,
            line=line,
            hint=hint,
            rule=rule,
            code=code,
        )

    def rule_label(self, index: int | None) -> str:
        """`rule 3 (level None)`, or a phrase for requests no rule matches."""
        if index is None:
            return "no rule"
        return f"rule {index} (level {self.rules[index].level})"
