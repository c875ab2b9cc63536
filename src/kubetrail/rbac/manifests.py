"""RBAC manifests from YAML text: Roles, ClusterRoles and their bindings, also inside `List` kinds.

Aggregated ClusterRoles (`aggregationRule`) get the rules of every ClusterRole whose labels match one of
their selectors, as the apiserver's aggregation controller fills them in; each such role is noted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from kubetrail.rbac.errors import RbacError
from kubetrail.rbac.generate import Subject
from kubetrail.rbac.rules import Rule

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
ROLE_KINDS = frozenset({"Role", "ClusterRole"})
BINDING_KINDS = frozenset({"RoleBinding", "ClusterRoleBinding"})


@dataclass(frozen=True)
class Role:
    """A Role (namespace set) or ClusterRole (namespace empty)."""

    kind: str
    name: str
    namespace: str
    rules: tuple[Rule, ...]
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    selectors: tuple[dict[str, Any], ...] = ()
    source: str = ""


@dataclass(frozen=True)
class Binding:
    """A RoleBinding (namespace set) or ClusterRoleBinding, naming its role and subjects."""

    kind: str
    name: str
    namespace: str
    role_kind: str
    role_name: str
    subjects: tuple[Subject, ...]
    source: str = ""


@dataclass
class RbacSet:
    """Everything loaded from the manifests, with notes for the reader (aggregation, skipped documents)."""

    roles: dict[tuple[str, str, str], Role] = field(default_factory=dict)
    bindings: list[Binding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def role(self, kind: str, namespace: str, name: str) -> Role | None:
        return self.roles.get((kind, namespace if kind == "Role" else "", name))


def _strings(value: object, where: str, field_name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RbacError("must be a list of strings", source=where, field=field_name)
    return tuple(value)


def _rule(raw: object, where: str, index: int) -> Rule:
    if not isinstance(raw, dict):
        raise RbacError("a rule must be a mapping", source=where, field=f"rules[{index}]")
    prefix = f"rules[{index}]."
    return Rule(
        verbs=_strings(raw.get("verbs"), where, prefix + "verbs"),
        api_groups=_strings(raw.get("apiGroups"), where, prefix + "apiGroups"),
        resources=_strings(raw.get("resources"), where, prefix + "resources"),
        resource_names=_strings(raw.get("resourceNames"), where, prefix + "resourceNames"),
        non_resource_urls=_strings(raw.get("nonResourceURLs"), where, prefix + "nonResourceURLs"),
    )


def _subject(raw: object, binding_namespace: str, where: str, index: int) -> Subject:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not isinstance(raw.get("kind"), str):
        raise RbacError("a subject needs a kind and a name", source=where, field=f"subjects[{index}]")
    kind = str(raw["kind"])
    namespace = str(raw.get("namespace") or "")
    if kind == "ServiceAccount" and not namespace:
        namespace = binding_namespace  # the authorizer's default for a subject without one
    return Subject(kind, str(raw["name"]), namespace if kind == "ServiceAccount" else "")


def _add_object(item: dict[str, Any], where: str, into: RbacSet) -> None:
    kind = item.get("kind")
    metadata = item.get("metadata") or {}
    name = str(metadata.get("name") or "")
    namespace = str(metadata.get("namespace") or "")
    if kind in ROLE_KINDS:
        if kind == "Role" and not namespace:
            namespace = "default"
        if kind == "ClusterRole":
            namespace = ""
        rules = tuple(_rule(raw, where, index) for index, raw in enumerate(item.get("rules") or []))
        aggregation = item.get("aggregationRule") or {}
        selectors = tuple(aggregation.get("clusterRoleSelectors") or ()) if kind == "ClusterRole" else ()
        labels = {str(key): str(value) for key, value in (metadata.get("labels") or {}).items()}
        into.roles[(str(kind), namespace, name)] = Role(str(kind), name, namespace, rules, labels, selectors, where)
    elif kind in BINDING_KINDS:
        if kind == "RoleBinding" and not namespace:
            namespace = "default"
        if kind == "ClusterRoleBinding":
            namespace = ""
        ref = item.get("roleRef") or {}
        if not isinstance(ref, dict) or not ref.get("name") or ref.get("kind") not in ROLE_KINDS:
            raise RbacError("roleRef needs kind Role or ClusterRole and a name", source=where, field="roleRef")
        subjects = tuple(_subject(raw, namespace, where, index) for index, raw in enumerate(item.get("subjects") or []))
        into.bindings.append(Binding(str(kind), name, namespace, str(ref["kind"]), str(ref["name"]), subjects, where))


def parse_manifests(text: str, source: str, into: RbacSet | None = None) -> RbacSet:
    """Add the RBAC objects of one (multi-document) YAML text; other kinds are skipped."""
    result = into if into is not None else RbacSet()
    try:
        documents = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise RbacError(f"not valid YAML: {getattr(error, 'problem', error)}", source=source, line=line) from error
    for number, document in enumerate(documents, start=1):
        if document is None:
            continue
        where = f"{source} (document {number})" if len(documents) > 1 else source
        if not isinstance(document, dict):
            raise RbacError("a manifest must be a mapping", source=where, hint="expected Role, ClusterRole, … or List")
        items = document.get("items") if str(document.get("kind", "")).endswith("List") else [document]
        for item in items or []:
            if isinstance(item, dict):
                _add_object(item, where, result)
    return result


def _selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(str(key)) != str(value):
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = str(expression.get("key")), expression.get("operator")
        values = [str(value) for value in expression.get("values") or []]
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def aggregate(rbac: RbacSet) -> None:
    """Fill aggregated ClusterRoles with the rules of the ClusterRoles their selectors match."""
    for key, role in list(rbac.roles.items()):
        if not role.selectors:
            continue
        rules = list(role.rules)
        sources: list[str] = []
        for other in sorted(rbac.roles.values(), key=lambda item: item.name):
            if other.kind != "ClusterRole" or other.name == role.name or other.selectors:
                continue
            if any(
                _selector_matches(selector, other.labels) for selector in role.selectors if isinstance(selector, dict)
            ):
                sources.append(other.name)
                rules.extend(rule for rule in other.rules if rule not in rules)
        rbac.roles[key] = Role(
            role.kind, role.name, role.namespace, tuple(rules), role.labels, role.selectors, role.source
        )
        listing = ", ".join(sources) if sources else "no loaded ClusterRole"
        rbac.notes.append(f"ClusterRole {role.name} is aggregated: rules taken from {listing}")
