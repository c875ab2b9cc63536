"""The least-privilege gap: permissions the manifests grant a subject that it never used in the window.

Each binding grants its role's rules to its subjects, in the binding's namespace (RoleBinding) or everywhere
(ClusterRoleBinding; only these grant nonResourceURLs). Every (verb, apiGroup, resource[, names]) or
(verb, URL) of a granted rule counts as used when some request of a subject the binding applies to matches it
with the same semantics as the RBAC authorizer, so `*` is used by any request it would allow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kubetrail.model import Event
from kubetrail.rbac.generate import Subject
from kubetrail.rbac.manifests import Binding, RbacSet
from kubetrail.rbac.observed import Observed, acting_user, implied_groups, service_account_user
from kubetrail.rbac.rules import Request, Rule, rule_allows


@dataclass(frozen=True)
class Identity:
    """A user seen in the window, with the groups it authenticated with."""

    username: str
    groups: frozenset[str]


def applies_to(subject: Subject, identity: Identity) -> bool:
    """Whether a binding subject covers the user (RBAC's `appliesToUser`)."""
    if subject.kind == "User":
        return identity.username == subject.name
    if subject.kind == "Group":
        return subject.name in identity.groups
    if subject.kind == "ServiceAccount":
        return identity.username == service_account_user(subject.namespace, subject.name)
    return False


@dataclass(frozen=True, slots=True, order=True)
class Permission:
    """One granted (verb, resource) or (verb, URL) in a scope (`*` for everywhere), and the grant it came from."""

    subject: str
    namespace: str
    verb: str
    api_group: str
    resource: str
    resource_names: tuple[str, ...]
    url: str
    via: str

    @property
    def what(self) -> str:
        if self.url:
            return self.url
        group = f".{self.api_group}" if self.api_group else ""
        names = f" [{','.join(self.resource_names)}]" if self.resource_names else ""
        return f"{self.resource}{group}{names}"


@dataclass
class UnusedReport:
    """Per subject: granted permissions and the unused ones among them."""

    granted: dict[str, int] = field(default_factory=dict)
    unused: list[Permission] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _expand(rule: Rule, binding: Binding) -> Iterable[tuple[Rule, str, str, str, str]]:
    """Single-verb, single-resource slices of a rule: (slice, verb, group, resource, url)."""
    for verb in rule.verbs:
        for url in rule.non_resource_urls:
            if binding.kind == "ClusterRoleBinding":
                yield Rule(verbs=(verb,), non_resource_urls=(url,)), verb, "", "", url
        for group in rule.api_groups:
            for resource in rule.resources:
                part = Rule(
                    verbs=(verb,), api_groups=(group,), resources=(resource,), resource_names=rule.resource_names
                )
                yield part, verb, group, resource, ""


def _in_scope(binding: Binding, request: Request) -> bool:
    if binding.kind == "ClusterRoleBinding":
        return True
    return request.is_resource_request and request.namespace == binding.namespace


def find_unused(rbac: RbacSet, observed: Iterable[Observed], identities: Iterable[Identity]) -> UnusedReport:
    """Granted-but-unused permissions for every subject of every binding."""
    report = UnusedReport(notes=list(rbac.notes))
    people = list(identities)
    requests = list(observed)
    seen: set[Permission] = set()
    for binding in sorted(rbac.bindings, key=lambda item: (item.kind, item.namespace, item.name)):
        role = rbac.role(binding.role_kind, binding.namespace, binding.role_name)
        where = f"{binding.namespace}/{binding.name}" if binding.namespace else binding.name
        via = f"{binding.kind} {where} → {binding.role_kind} {binding.role_name}"
        if role is None:
            report.notes.append(f"{via}: the role is not among the manifests; its grants are unknown")
            continue
        scope = binding.namespace or "*"
        for subject in binding.subjects:
            users = {person.username for person in people if applies_to(subject, person)}
            mine = [
                item for item in requests if item.allowed and item.users & users and _in_scope(binding, item.request)
            ]
            label = str(subject)
            for rule in role.rules:
                for part, verb, group, resource, url in _expand(rule, binding):
                    permission = Permission(label, scope, verb, group, resource, rule.resource_names, url, via)
                    if permission in seen:
                        continue
                    seen.add(permission)
                    report.granted[label] = report.granted.get(label, 0) + 1
                    if not any(rule_allows(part, item.request) for item in mine):
                        report.unused.append(permission)
    report.unused.sort()
    return report


def identities_of(events: Iterable[Event]) -> list[Identity]:
    """Every acting user of the events, with the union of the groups it was seen with."""
    groups: dict[str, set[str]] = {}
    for event in events:
        user = acting_user(event)
        groups.setdefault(user.username, set()).update(implied_groups(user))
    return [Identity(name, frozenset(found)) for name, found in sorted(groups.items())]
