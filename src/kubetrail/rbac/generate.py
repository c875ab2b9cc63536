"""Roles that grant exactly what a subject was seen doing, like audit2rbac but with no verb expansion.

Each namespace's requests go to a Role and RoleBinding there; cluster-scoped resources, requests across all
namespaces and non-resource URLs go to a ClusterRole and ClusterRoleBinding. Rules group resources that were
used with the same verbs; a namespaced permission the ClusterRole already grants is left out, so removing
any single verb from the output denies some observed request.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from kubetrail.rbac.observed import SERVICE_ACCOUNT_PREFIX, Observed
from kubetrail.rbac.rules import Request, Rule, rules_allow
from kubetrail.rbac.yamltext import scalar, string_list

RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_VERSION = f"{RBAC_GROUP}/v1"
CLUSTER = ""
"""The scope key of cluster-wide rules (namespaces are never empty)."""


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a binding names: a User, Group or ServiceAccount (with its namespace)."""

    kind: str
    name: str
    namespace: str = ""

    @classmethod
    def from_username(cls, username: str) -> Subject:
        if username.startswith(SERVICE_ACCOUNT_PREFIX):
            namespace, _, name = username[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
            if namespace and name and ":" not in name:
                return cls("ServiceAccount", name, namespace)
        return cls("User", username)

    @property
    def username(self) -> str:
        """The username this subject authenticates as (Users and ServiceAccounts)."""
        if self.kind == "ServiceAccount":
            return f"{SERVICE_ACCOUNT_PREFIX}{self.namespace}:{self.name}"
        return self.name

    def __str__(self) -> str:
        if self.kind == "ServiceAccount":
            return f"ServiceAccount {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class GenerateOptions:
    """What to grant: named objects only (`resource_names`), denied requests too, one namespace only."""

    resource_names: bool = False
    include_denied: bool = False
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class RuleNote:
    """A generated rule and the traffic behind it (for the comment above it)."""

    rule: Rule
    requests: int
    denied: int
    first: str
    last: str


@dataclass
class Generated:
    """Rules per scope (CLUSTER or a namespace) for one subject."""

    subject: Subject
    scopes: dict[str, list[RuleNote]] = field(default_factory=dict)
    requests: list[Observed] = field(default_factory=list)

    def rules(self, scope: str) -> list[Rule]:
        return [note.rule for note in self.scopes.get(scope, [])]

    def allows(self, request: Request) -> bool:
        """Whether the generated objects grant the request, as the RBAC authorizer would decide."""
        if rules_allow(self.rules(CLUSTER), request):
            return True
        return (
            bool(request.namespace)
            and request.is_resource_request
            and rules_allow(self.rules(request.namespace), request)
        )


@dataclass
class _Usage:
    """Traffic behind one (scope, permission, verb)."""

    requests: int = 0
    denied: int = 0
    first: str = ""
    last: str = ""

    def add(self, observed: Observed) -> None:
        self.requests += observed.count
        self.denied += observed.denied
        if observed.first and (not self.first or observed.first < self.first):
            self.first = observed.first
        self.last = max(self.last, observed.last)


# A permission: (api_group, combined resource, name or "") for resources; ("", "", "", path) for URLs.
_Key = tuple[str, str, str, str]


def _scope_of(request: Request) -> str:
    return request.namespace if request.is_resource_request and request.namespace else CLUSTER


def _key_of(request: Request, resource_names: bool) -> _Key:
    if not request.is_resource_request:
        return ("", "", "", request.path)
    return (request.api_group, request.combined_resource, request.name if resource_names else "", "")


def generate(subject: Subject, observed: Iterable[Observed], options: GenerateOptions | None = None) -> Generated:
    """The rules granting exactly the subject's observed requests (allowed ones, or all with include_denied)."""
    options = options or GenerateOptions()
    result = Generated(subject)
    usage: dict[str, dict[_Key, dict[str, _Usage]]] = defaultdict(lambda: defaultdict(dict))
    for item in sorted(observed, key=lambda entry: entry.request):
        if not item.allowed and not options.include_denied:
            continue
        scope = _scope_of(item.request)
        if options.namespace is not None and scope != options.namespace:
            continue
        result.requests.append(item)
        verbs = usage[scope][_key_of(item.request, options.resource_names)]
        verbs.setdefault(item.request.verb, _Usage()).add(item)
    _drop_covered(usage)
    for scope in sorted(usage):
        notes = _compact(usage[scope])
        if notes:
            result.scopes[scope] = notes
    return result


def _drop_covered(usage: dict[str, dict[_Key, dict[str, _Usage]]]) -> None:
    """Remove verbs that a broader permission already grants: the unnamed one in the same scope, or the cluster's."""
    cluster = usage.get(CLUSTER, {})
    for scope, keys in usage.items():
        for key, verbs in keys.items():
            group, resource, name, path = key
            if path:
                continue
            broader: list[dict[str, _Usage]] = []
            if name:
                broader.append(keys.get((group, resource, "", ""), {}))
                if scope != CLUSTER:
                    broader.append(cluster.get(key, {}))
            if scope != CLUSTER:
                broader.append(cluster.get((group, resource, "", ""), {}))
            for verb in [verb for verb in verbs if any(verb in other for other in broader)]:
                del verbs[verb]
    for keys in usage.values():
        for key in [key for key, verbs in keys.items() if not verbs]:
            del keys[key]


def _merge(usages: Iterable[_Usage]) -> _Usage:
    total = _Usage()
    for item in usages:
        total.requests += item.requests
        total.denied += item.denied
        if item.first and (not total.first or item.first < total.first):
            total.first = item.first
        total.last = max(total.last, item.last)
    return total


def _compact(keys: dict[_Key, dict[str, _Usage]]) -> list[RuleNote]:
    """Rules grouping names with equal verbs, then resources with equal verbs and names, then URLs by verbs."""
    named: dict[tuple[str, str, tuple[str, ...]], list[tuple[str, dict[str, _Usage]]]] = defaultdict(list)
    urls: dict[tuple[str, ...], list[tuple[str, dict[str, _Usage]]]] = defaultdict(list)
    for (group, resource, name, path), verbs in keys.items():
        verb_list = tuple(sorted(verbs))
        if path:
            urls[verb_list].append((path, verbs))
        else:
            named[(group, resource, verb_list)].append((name, verbs))
    by_rule: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[tuple[str, list[_Usage]]]] = defaultdict(list)
    for (group, resource, verb_list), entries in named.items():
        names = tuple(sorted(name for name, _ in entries if name))
        by_rule[(group, verb_list, names)].append(
            (resource, [usage for _, verbs in entries for usage in verbs.values()])
        )
    notes: list[RuleNote] = []
    for (group, verb_list, names), resources in sorted(by_rule.items()):
        total = _merge(usage for _, usages in resources for usage in usages)
        rule = Rule(
            verbs=verb_list,
            api_groups=(group,),
            resources=tuple(sorted(resource for resource, _ in resources)),
            resource_names=names,
        )
        notes.append(RuleNote(rule, total.requests, total.denied, total.first, total.last))
    for verb_list, entries in sorted(urls.items()):
        total = _merge(usage for _, verbs in entries for usage in verbs.values())
        rule = Rule(verbs=verb_list, non_resource_urls=tuple(sorted(path for path, _ in entries)))
        notes.append(RuleNote(rule, total.requests, total.denied, total.first, total.last))
    return notes


def object_name(subject: Subject) -> str:
    """`kubetrail:<username>`, with the characters RBAC names cannot hold (`/`, `%`) replaced."""
    return "kubetrail:" + subject.username.replace("/", "-").replace("%", "-")


def _subject_lines(subject: Subject) -> list[str]:
    lines = [f"- kind: {subject.kind}", f"  name: {scalar(subject.name)}"]
    if subject.kind == "ServiceAccount":
        lines.append(f"  namespace: {scalar(subject.namespace)}")
    else:
        lines.append(f"  apiGroup: {RBAC_GROUP}")
    return lines


def _rule_lines(note: RuleNote) -> list[str]:
    denied = f", {note.denied} denied" if note.denied else ""
    span = f" between {note.first} and {note.last}" if note.first else ""
    lines = [f"# {note.requests} request(s){denied}{span}"]
    rule = note.rule
    body: list[str] = []
    if rule.non_resource_urls:
        body += string_list("nonResourceURLs", rule.non_resource_urls, "")
    else:
        body += string_list("apiGroups", rule.api_groups, "")
        body += string_list("resources", rule.resources, "")
        if rule.resource_names:
            body += string_list("resourceNames", rule.resource_names, "")
    body += string_list("verbs", rule.verbs, "")
    lines.append("- " + body[0])
    lines.extend("  " + line for line in body[1:])
    return lines


def _metadata(name: str, namespace: str, subject: Subject) -> list[str]:
    lines = ["metadata:", f"  name: {scalar(name)}"]
    if namespace:
        lines.append(f"  namespace: {scalar(namespace)}")
    lines += [
        "  labels:",
        "    app.kubernetes.io/managed-by: kubetrail",
        "  annotations:",
        f"    kubetrail.io/generated-for: {scalar(subject.username)}",
    ]
    return lines


def render(generated: Generated, header: list[str] | None = None) -> str:
    """The ClusterRole/ClusterRoleBinding, then each namespace's Role/RoleBinding, as multi-document YAML."""
    name = object_name(generated.subject)
    documents: list[list[str]] = []
    for scope, notes in generated.scopes.items():
        role_kind = "ClusterRole" if scope == CLUSTER else "Role"
        where = "cluster-wide" if scope == CLUSTER else f"in namespace {scope}"
        role = [f"# What {generated.subject} used {where}.", f"apiVersion: {RBAC_VERSION}", f"kind: {role_kind}"]
        role += _metadata(name, scope, generated.subject)
        role.append("rules:")
        for note in notes:
            role += _rule_lines(note)
        binding = [f"apiVersion: {RBAC_VERSION}", f"kind: {role_kind}Binding"]
        binding += _metadata(name, scope, generated.subject)
        binding += ["roleRef:", f"  apiGroup: {RBAC_GROUP}", f"  kind: {role_kind}", f"  name: {scalar(name)}"]
        binding += ["subjects:", *_subject_lines(generated.subject)]
        documents += [role, binding]
    lines = [f"# {line}" if line else "#" for line in header or []]
    if not documents:
        lines.append(f"# No requests of {generated.subject} matched: nothing to grant.")
        return "\n".join(lines) + "\n"
    text = "\n---\n".join("\n".join(document) for document in documents)
    return "\n".join([*lines, text]) + "\n" if lines else text + "\n"
