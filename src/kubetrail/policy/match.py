"""Whether one policy rule matches a request: the apiserver policy checker's rules, one function each.

These are the reference semantics; `evaluate` compiles the same logic into lookup tables.
"""

from __future__ import annotations

from kubetrail.model.policy import GroupResources, PolicyRule
from kubetrail.policy.attributes import RequestAttributes

ALL_GROUPS = "*"  # a `group` matching every API group, core included (kube-apiserver 1.36 and later)


def path_matches(path: str, spec: str) -> bool:
    """A nonResourceURLs entry: `*`, an exact path, or a prefix ending in `*`."""
    if spec == "*" or spec == path:
        return True
    return spec.endswith("*") and path.startswith(spec.rstrip("*"))


def resource_matches(resource: str, subresource: str, spec: str) -> bool:
    """A resources entry: `*`, `resource`, `resource/subresource`, `*/subresource` or `resource/*`."""
    combined = f"{resource}/{subresource}" if subresource else resource
    if spec == combined or spec == "*":
        return True
    if subresource and spec.startswith("*/") and subresource == spec[2:]:
        return True
    return spec.endswith("/*") and resource == spec[:-2]


def group_matches(spec: str, api_group: str) -> bool:
    """A GroupResources `group`: the request's API group exactly (`""` is core), or `*` for every group."""
    return spec in (api_group, ALL_GROUPS)


def group_resources_match(entry: GroupResources, attrs: RequestAttributes) -> bool:
    """One GroupResources entry: a matching API group, then any listed resource (and name, if listed)."""
    if not group_matches(entry.group, attrs.api_group):
        return False
    if not entry.resources:
        return True
    if entry.resourceNames and attrs.name not in entry.resourceNames:
        return False
    return any(resource_matches(attrs.resource, attrs.subresource, spec) for spec in entry.resources)


def user_matches(rule: PolicyRule, attrs: RequestAttributes) -> bool:
    """`users` lists the user's name, and `userGroups` at least one of the user's groups."""
    if rule.users and attrs.user not in rule.users:
        return False
    return not rule.userGroups or any(group in rule.userGroups for group in attrs.groups)


def verb_matches(rule: PolicyRule, attrs: RequestAttributes) -> bool:
    """`verbs` lists the request's verb (no wildcard: the apiserver compares strings)."""
    return not rule.verbs or attrs.verb in rule.verbs


def target_matches(rule: PolicyRule, attrs: RequestAttributes) -> bool:
    """Resource rules match only resource requests; URL rules only non-resource requests."""
    if rule.namespaces or rule.resources:
        if not attrs.is_resource_request:
            return False
        if rule.namespaces and attrs.namespace not in rule.namespaces:
            return False
        return not rule.resources or any(group_resources_match(entry, attrs) for entry in rule.resources)
    if rule.nonResourceURLs:
        if attrs.is_resource_request:
            return False
        return any(path_matches(attrs.path, spec) for spec in rule.nonResourceURLs)
    return True


def rule_matches(rule: PolicyRule, attrs: RequestAttributes) -> bool:
    """True when every non-empty selector of `rule` matches the request."""
    return user_matches(rule, attrs) and verb_matches(rule, attrs) and target_matches(rule, attrs)
