"""Lint check for rules that can never match: an earlier rule matches every request they match.

The check is a sound static subsumption test done per selector, with the apiserver's matching
semantics (see `match.py`): it reports only when it is sure, never on a rule that some request
could still reach.
"""

from __future__ import annotations

from kubetrail.model.policy import GroupResources, PolicyRule
from kubetrail.policy.issues import PolicyIssue, Severity
from kubetrail.policy.lint_context import LintContext
from kubetrail.policy.match import group_matches


def _list_covers(outer: list[str], inner: list[str]) -> bool:
    """An empty selector matches anything; otherwise every value the inner one accepts must be listed."""
    return not outer or (bool(inner) and set(inner) <= set(outer))


def url_covers(outer: str, inner: str) -> bool:
    """Every path `inner` matches is matched by `outer` (`*`, exact, or a prefix ending in `*`)."""
    if outer == "*" or outer == inner:
        return True
    if not outer.endswith("*"):
        return False
    inner_prefix = inner[:-1] if inner.endswith("*") else inner
    return inner_prefix.startswith(outer[:-1])


def _plain(name: str) -> bool:
    return bool(name) and "*" not in name and "/" not in name


def resource_spec_covers(outer: str, inner: str) -> bool:
    """Every (resource, subresource) `inner` matches is matched by `outer`.

    Spec forms: `*` (everything), `r`, `r/s`, `r/*` (r and all its subresources), `*/s` (subresource s of anything).
    """
    if outer == "*" or outer == inner:
        return True
    head, slash, tail = outer.partition("/")
    if not slash:
        return False
    if tail == "*" and _plain(head):
        return inner == head or inner.startswith(f"{head}/")
    if head == "*" and _plain(tail):
        inner_head, inner_slash, inner_tail = inner.partition("/")
        return bool(inner_slash) and inner_head != "" and inner_tail == tail
    return False


def _entry_covers_spec(outer: GroupResources, group: str, spec: str, names: list[str]) -> bool:
    if not group_matches(outer.group, group):  # an inner "*" is covered by an outer "*" only
        return False
    if not outer.resources:
        return True
    if not _list_covers(outer.resourceNames, names):
        return False
    return any(resource_spec_covers(candidate, spec) for candidate in outer.resources)


def _whole_group(entry: GroupResources) -> bool:
    return not entry.resources or ("*" in entry.resources and not entry.resourceNames)


def _resources_cover(outer: list[GroupResources], inner: list[GroupResources]) -> bool:
    if not outer:
        return True
    if not inner:
        return False
    for entry in inner:
        if not entry.resources:
            if not any(group_matches(o.group, entry.group) and _whole_group(o) for o in outer):
                return False
            continue
        for spec in entry.resources:
            if not any(_entry_covers_spec(o, entry.group, spec, entry.resourceNames) for o in outer):
                return False
    return True


def _target(rule: PolicyRule) -> str:
    if rule.namespaces or rule.resources:
        return "resource"
    if rule.nonResourceURLs:
        return "url"
    return "any"


def _target_covers(outer: PolicyRule, inner: PolicyRule) -> bool:
    kind = _target(outer)
    if kind == "any":
        return True
    if kind != _target(inner):
        return False
    if kind == "url":
        return all(any(url_covers(o, i) for o in outer.nonResourceURLs) for i in inner.nonResourceURLs)
    return _list_covers(outer.namespaces, inner.namespaces) and _resources_cover(outer.resources, inner.resources)


def rule_covers(outer: PolicyRule, inner: PolicyRule) -> bool:
    """True when every request `inner` matches is also matched by `outer`."""
    return (
        _list_covers(outer.users, inner.users)
        and _list_covers(outer.userGroups, inner.userGroups)
        and _list_covers(outer.verbs, inner.verbs)
        and _target_covers(outer, inner)
    )


def check_shadowed(ctx: LintContext) -> list[PolicyIssue]:
    """Rules after an earlier rule that matches everything they match (the first match wins)."""
    findings: list[PolicyIssue] = []
    rules = ctx.rules
    for later, rule in enumerate(rules):
        for earlier in range(later):
            if not rule_covers(rules[earlier], rule):
                continue
            same = rules[earlier].level == rule.level
            message = (
                f"rule {later} (level {rule.level}) can never match: {ctx.rule_label(earlier)} comes first "
                f"and matches every request rule {later} matches"
            )
            hint = (
                f"delete rule {later}: it changes nothing"
                if same
                else f"move rule {later} above rule {earlier} if its level should win, or delete it"
            )
            findings.append(ctx.finding("shadowed-rule", Severity.WARNING, message, hint, rule=later))
            break
    return findings
