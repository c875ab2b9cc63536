"""RBAC rules and requests, and `rule_allows`: the Kubernetes RBAC authorizer's matching of one rule.

Semantics (k8s.io/kubernetes `pkg/apis/rbac/v1/evaluation_helpers.go`, as documented for RBAC):
- verbs, apiGroups, resources: `*` matches anything;
- a resource request names `resource` or `resource/subresource`; a rule's `*/sub` matches any resource's
  `sub` subresource; `pods/*` is not a wildcard;
- resourceNames, when present, must contain the request's name (an unnamed request, e.g. list or create,
  never matches a rule with resourceNames);
- nonResourceURLs match non-resource requests only: `*`, the exact path, or a prefix ending in `*`.
"""

from __future__ import annotations

from dataclasses import dataclass

WILDCARD = "*"


@dataclass(frozen=True, slots=True, order=True)
class Rule:
    """One PolicyRule of a Role or ClusterRole."""

    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, order=True)
class Request:
    """The authorization attributes of one API request (what the RBAC authorizer sees).

    `namespace` is empty for cluster-scoped and all-namespace requests; `path` is set for
    non-resource requests (`/healthz`, `/apis`), whose `resource` is empty.
    """

    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def is_resource_request(self) -> bool:
        return not self.path

    @property
    def combined_resource(self) -> str:
        """`resource` or `resource/subresource`, as rules name it."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def verb_matches(rule: Rule, verb: str) -> bool:
    return WILDCARD in rule.verbs or verb in rule.verbs


def api_group_matches(rule: Rule, group: str) -> bool:
    return WILDCARD in rule.api_groups or group in rule.api_groups


def resource_matches(rule: Rule, combined: str, subresource: str) -> bool:
    for resource in rule.resources:
        if resource in (WILDCARD, combined):
            return True
        if subresource and resource == f"{WILDCARD}/{subresource}":
            return True
    return False


def resource_name_matches(rule: Rule, name: str) -> bool:
    return not rule.resource_names or name in rule.resource_names


def non_resource_url_matches(rule: Rule, path: str) -> bool:
    for url in rule.non_resource_urls:
        if url in (WILDCARD, path):
            return True
        if url.endswith(WILDCARD) and path.startswith(url[:-1]):
            return True
    return False


def rule_allows(rule: Rule, request: Request) -> bool:
    """True when this single rule grants the request (bindings and namespaces are the caller's concern)."""
    if not verb_matches(rule, request.verb):
        return False
    if request.is_resource_request:
        return (
            api_group_matches(rule, request.api_group)
            and resource_matches(rule, request.combined_resource, request.subresource)
            and resource_name_matches(rule, request.name)
        )
    return non_resource_url_matches(rule, request.path)


def rules_allow(rules: list[Rule] | tuple[Rule, ...], request: Request) -> bool:
    """True when any of the rules grants the request."""
    return any(rule_allows(rule, request) for rule in rules)
