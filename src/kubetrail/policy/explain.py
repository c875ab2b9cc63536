"""Why a policy gives a request its level: per rule, every selector that matched or did not, in words.

The checks follow the apiserver's policy checker selector by selector (see `match`), but do not
stop at the first failure, so a reader sees every reason a rule misses. The decision itself comes
from the reference evaluator; a rule is reported as matching exactly when all its checks pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kubetrail.model.event import Level
from kubetrail.model.policy import GroupResources, Policy, PolicyRule
from kubetrail.policy.attributes import RequestAttributes
from kubetrail.policy.evaluate import AuditDecision, evaluate
from kubetrail.policy.match import ALL_GROUPS, group_matches, path_matches, resource_matches

if TYPE_CHECKING:
    from kubetrail.policy.load import LoadedPolicy


@dataclass(frozen=True, slots=True)
class Check:
    """One selector of a rule held against the request: which selector, whether it matched, and why."""

    selector: str
    matched: bool
    reason: str


@dataclass(frozen=True, slots=True)
class RuleExplanation:
    """One rule's verdict for the request, with the source line the rule starts on."""

    index: int
    level: Level
    line: int | None
    matched: bool
    checks: tuple[Check, ...]

    @property
    def reasons(self) -> list[str]:
        """Why it matched (every check) or why not (only the failing checks)."""
        if self.matched:
            return [check.reason for check in self.checks]
        return [check.reason for check in self.checks if not check.matched]


@dataclass(frozen=True, slots=True)
class Explanation:
    """The decision for one request and the verdict of every rule of the policy, in order."""

    attributes: RequestAttributes
    decision: AuditDecision
    rules: tuple[RuleExplanation, ...]

    @property
    def matched_rule(self) -> RuleExplanation | None:
        """The rule that decided (the first match), or None when no rule matched."""
        index = self.decision.rule_index
        return None if index is None else self.rules[index]

    @property
    def earlier_rules(self) -> tuple[RuleExplanation, ...]:
        """The rules tried before the deciding one (all rules when none matched)."""
        index = self.decision.rule_index
        return self.rules if index is None else self.rules[:index]


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _listed(values: list[str]) -> str:
    return "[" + " ".join(_quote(value) if not value or " " in value else value for value in values) + "]"


def _includes(selector: str, values: list[str], value: str, note: str = "") -> Check:
    matched = value in values
    verb = "includes" if matched else "does not include"
    return Check(selector, matched, f"{selector} {_listed(values)} {verb} {_quote(value)}{note}")


def _user_checks(rule: PolicyRule, attrs: RequestAttributes) -> list[Check]:
    checks: list[Check] = []
    if rule.users:
        checks.append(_includes("users", rule.users, attrs.user, "" if attrs.user else " (the request has no user)"))
    if rule.userGroups:
        listed = _listed(rule.userGroups)
        common = [group for group in attrs.groups if group in rule.userGroups]
        if common:
            reason = f"userGroups {listed} includes the user's group {_quote(common[0])}"
        elif attrs.groups:
            reason = f"userGroups {listed} includes none of the user's groups {_listed(list(attrs.groups))}"
        else:
            reason = f"userGroups {listed}: the user has no groups"
        checks.append(Check("userGroups", bool(common), reason))
    if rule.verbs:
        checks.append(_includes("verbs", rule.verbs, attrs.verb))
    return checks


def _combined(attrs: RequestAttributes) -> str:
    return f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource


def _spec_reason(spec: str, attrs: RequestAttributes) -> str:
    combined = _combined(attrs)
    if spec == "*":
        return f'"*" matches every resource, including {_quote(combined)}'
    if spec.startswith("*/") and spec != combined:
        return f"{_quote(spec)} matches subresource {_quote(attrs.subresource)} of any resource"
    if spec.endswith("/*") and spec != combined:
        return f"{_quote(spec)} matches {_quote(attrs.resource)} and all its subresources"
    return f"{_quote(spec)} matches {_quote(combined)}"


def _entry_check(position: int, entry: GroupResources, attrs: RequestAttributes) -> Check:
    """One GroupResources entry: group, then resources, then names (all must hold, as in the checker)."""
    label = f"resources[{position}]"
    if not group_matches(entry.group, attrs.api_group):
        group = _quote(entry.group)
        return Check("resources", False, f"{label}: group {group} ≠ request group {_quote(attrs.api_group)}")
    if entry.group == ALL_GROUPS:
        request_group = _quote(attrs.api_group) if attrs.api_group else "the core group"
        label += f' (group "*" matches every API group, {request_group} included)'
    if not entry.resources:
        return Check("resources", True, f"{label}: group {_quote(entry.group)} lists no resources, so all match")
    spec = next((spec for spec in entry.resources if resource_matches(attrs.resource, attrs.subresource, spec)), None)
    if spec is None:
        listed = _listed(entry.resources)
        return Check("resources", False, f"{label}: {listed} does not include {_quote(_combined(attrs))}")
    if entry.resourceNames and attrs.name not in entry.resourceNames:
        shown = _quote(attrs.name) if attrs.name else '"" (the request names no object)'
        names = _listed(entry.resourceNames)
        return Check("resources", False, f"{label}: resourceNames {names} does not include {shown}")
    named = f" named {_quote(attrs.name)}" if entry.resourceNames else ""
    return Check("resources", True, f"{label}: {_spec_reason(spec, attrs)}{named}")


def _resource_checks(rule: PolicyRule, attrs: RequestAttributes) -> list[Check]:
    if not attrs.is_resource_request:
        path = _quote(attrs.path)
        return [Check("resources", False, f"resource rules never match non-resource requests (path {path})")]
    checks: list[Check] = []
    if rule.namespaces:
        note = " (cluster-scoped)" if not attrs.namespace else ""
        checks.append(_includes("namespaces", rule.namespaces, attrs.namespace, note))
    if rule.resources:
        entries = [_entry_check(position, entry, attrs) for position, entry in enumerate(rule.resources)]
        hits = [check for check in entries if check.matched]
        checks.extend(hits[:1] if hits else entries)
    return checks


def _url_checks(rule: PolicyRule, attrs: RequestAttributes) -> list[Check]:
    if attrs.is_resource_request:
        target = _quote(_combined(attrs))
        return [Check("nonResourceURLs", False, f"nonResourceURLs rules never match resource requests ({target})")]
    for spec in rule.nonResourceURLs:
        if path_matches(attrs.path, spec):
            how = "prefix " if spec.endswith("*") and spec not in ("*", attrs.path) else ""
            return [Check("nonResourceURLs", True, f"nonResourceURLs {how}{_quote(spec)} matches {_quote(attrs.path)}")]
    return [
        Check(
            "nonResourceURLs",
            False,
            f"nonResourceURLs {_listed(rule.nonResourceURLs)} does not match {_quote(attrs.path)}",
        )
    ]


def explain_rule(index: int, rule: PolicyRule, attrs: RequestAttributes, line: int | None = None) -> RuleExplanation:
    """Every selector of `rule` held against the request (all of them, not only up to the first miss)."""
    checks = _user_checks(rule, attrs)
    if rule.namespaces or rule.resources:
        checks.extend(_resource_checks(rule, attrs))
    elif rule.nonResourceURLs:
        checks.extend(_url_checks(rule, attrs))
    if not checks:
        checks.append(Check("", True, "the rule has no selectors, so it matches every request"))
    matched = all(check.matched for check in checks)
    return RuleExplanation(index=index, level=Level(rule.level), line=line, matched=matched, checks=tuple(checks))


def explain(policy: LoadedPolicy | Policy, attrs: RequestAttributes) -> Explanation:
    """The decision for `attrs` and, for every rule, why it matched or did not."""
    loaded = None if isinstance(policy, Policy) else policy
    plain = policy if isinstance(policy, Policy) else policy.policy
    rules = tuple(
        explain_rule(index, rule, attrs, loaded.rule_line(index) if loaded is not None else None)
        for index, rule in enumerate(plain.rules)
    )
    return Explanation(attributes=attrs, decision=evaluate(plain, attrs), rules=rules)
