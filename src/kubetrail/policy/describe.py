"""One-line summaries of policy rules and sizes, for tables and pages."""

from __future__ import annotations

from kubetrail.model.policy import PolicyRule
from kubetrail.policy.match import ALL_GROUPS


def describe_rule(rule: PolicyRule) -> str:
    """A one-line summary of a rule's selectors, e.g. `users=system:kube-proxy; verbs=watch; resources=services`."""
    parts: list[str] = []  # selectors are ANDed; the values of one selector are alternatives
    if rule.users:
        parts.append("users=" + ", ".join(rule.users))
    if rule.userGroups:
        parts.append("groups=" + ", ".join(rule.userGroups))
    if rule.verbs:
        parts.append("verbs=" + ", ".join(rule.verbs))
    if rule.namespaces:
        parts.append("namespaces=" + ", ".join(ns or '""' for ns in rule.namespaces))
    if rule.resources:
        names: list[str] = []
        for entry in rule.resources:
            listed = entry.resources or ["*"]
            if entry.group == ALL_GROUPS:  # not "*/pods", which reads as a subresource wildcard
                names.extend(f"{resource} (every group)" for resource in listed)
                continue
            prefix = f"{entry.group}/" if entry.group else ""
            names.extend(prefix + resource for resource in listed)
        parts.append("resources=" + ", ".join(names))
    if rule.nonResourceURLs:
        parts.append("urls=" + ", ".join(rule.nonResourceURLs))
    if rule.omitStages:
        parts.append("omitStages=" + ", ".join(rule.omitStages))
    return "; ".join(parts) or "(everything)"


def human_bytes(count: float) -> str:
    """1536 → `1.5 KiB`."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
