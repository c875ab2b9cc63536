"""Allow-lists: identities, namespaces, images and address ranges whose alerts are expected, kept out of the rules.

An allow-list file says which alerts to drop after the rules matched, so tuning a cluster never means editing
the built-in rules:

    allow:
      users: ["system:serviceaccount:argocd:*"]        # shell patterns on the user name
      groups: [platform-admins]                          # any of the user's groups
      namespaces: [sandbox-*]                            # the target object's namespace
      images: ["registry.example.com/*"]                 # every image of the pod (or pod template) in the request
      source_ips: [10.20.0.0/16, "2001:db8::/32"]        # every client address inside a range
      outcomes: [denied]                                 # how the request ended (ka.outcome)
      rules:
        Secret Read By Human: {users: [oncall@example.com], namespaces: [payments]}
        Kubelet API Reached Through Node Proxy: {groups: [sre], outcomes: [failed]}

Top-level lists are independent: an alert is dropped when any of them matches its event. Under `rules`, an
entry applies to that rule only and every criterion it gives must match (users AND namespaces above).
Outcomes are `succeeded`, `denied` and `failed`, as `ka.outcome` tells them; a request whose outcome is not
recorded yet (RequestReceived) matches none.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from kubetrail.detect.alert import Alert
from kubetrail.detect.context import MISSING, EventContext
from kubetrail.detect.facts import Outcome, outcome_label
from kubetrail.errors import KubetrailError

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_CRITERIA = ("users", "groups", "namespaces", "images", "source_ips", "outcomes")
_OUTCOMES = tuple(item.value for item in Outcome)
_POD_SPECS = (("spec",), ("spec", "template", "spec"), ("spec", "jobTemplate", "spec", "template", "spec"))
_CONTAINER_KEYS = ("containers", "initContainers", "ephemeralContainers")


class AllowListError(KubetrailError):
    """An allow-list file that cannot be used: where (file, line, field) and how to fix it."""

    def __init__(self, message: str, *, source: str, line: int | None = None, field: str = "", hint: str = "") -> None:
        self.source = source
        self.line = line
        self.field = field
        self.hint = hint
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


@dataclass(frozen=True)
class Criteria:
    """One set of allow conditions; `match_all` says whether every given list must match or any one."""

    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    source_ips: tuple[_Network, ...] = ()
    outcomes: tuple[str, ...] = ()
    match_all: bool = False

    @property
    def empty(self) -> bool:
        return not (self.users or self.groups or self.namespaces or self.images or self.source_ips or self.outcomes)

    def matches(self, ctx: EventContext) -> bool:
        """Whether the event is allowed by these criteria."""
        checks = []
        if self.users:
            checks.append(_any_pattern(self.users, [ctx.event.user.username]))
        if self.groups:
            checks.append(_any_pattern(self.groups, ctx.event.user.groups))
        if self.namespaces:
            ref = ctx.event.objectRef
            checks.append(_any_pattern(self.namespaces, [ref.namespace] if ref is not None and ref.namespace else []))
        if self.images:
            images = request_images(ctx)
            checks.append(bool(images) and all(_any_pattern(self.images, [image]) for image in images))
        if self.source_ips:
            checks.append(_all_inside(ctx.event.sourceIPs, self.source_ips))
        if self.outcomes:
            checks.append(outcome_label(ctx.event) in self.outcomes)
        if not checks:
            return False
        return all(checks) if self.match_all else any(checks)


@dataclass(frozen=True)
class AllowList:
    """The allow-list of a file: global criteria plus criteria per rule name."""

    common: Criteria = field(default_factory=Criteria)
    per_rule: dict[str, Criteria] = field(default_factory=dict)
    source: str = ""

    def allows(self, alert: Alert, ctx: EventContext) -> bool:
        """Whether `alert`, raised on the event in `ctx`, is expected and should be dropped."""
        if self.common.matches(ctx):
            return True
        rule = self.per_rule.get(alert.rule)
        return rule is not None and rule.matches(ctx)

    def filter(self, alerts: list[Alert], ctx: EventContext) -> list[Alert]:
        """The alerts the allow-list does not drop, in order."""
        if not alerts:
            return alerts
        return [alert for alert in alerts if not self.allows(alert, ctx)]

    def unknown_rules(self, known: Iterable[str]) -> list[str]:
        """Rule names under `rules:` that name no loaded rule (likely typos)."""
        names = set(known)
        return sorted(name for name in self.per_rule if name not in names)


def request_images(ctx: EventContext) -> list[str]:
    """Every container image of the pod, or pod template, in the request body."""
    body = ctx.request
    if body is MISSING or not isinstance(body, dict):
        return []
    images: list[str] = []
    for path in _POD_SPECS:
        spec: Any = body
        for key in path:
            spec = spec.get(key) if isinstance(spec, dict) else None
        if not isinstance(spec, dict):
            continue
        for key in _CONTAINER_KEYS:
            for container in spec.get(key) or []:
                if isinstance(container, dict) and isinstance(container.get("image"), str):
                    images.append(container["image"])
    return images


def _any_pattern(patterns: Sequence[str], values: Iterable[str]) -> bool:
    return any(fnmatchcase(value, pattern) for value in values for pattern in patterns)


def _all_inside(addresses: Sequence[str], networks: Sequence[_Network]) -> bool:
    if not addresses:
        return False
    for text in addresses:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return False
        if not any(address.version == network.version and address in network for network in networks):
            return False
    return True


class _Reader:
    """Builds criteria from YAML nodes, so errors can name the line."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, node: yaml.Node | None, field: str, message: str, hint: str = "") -> AllowListError:
        line = node.start_mark.line + 1 if node is not None else None
        return AllowListError(message, source=self.source, line=line, field=field, hint=hint)

    def mapping(self, node: yaml.Node, field: str) -> list[tuple[str, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, field, "must be a mapping")
        pairs = []
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                raise self.error(key, field, "keys must be plain names")
            pairs.append((str(key.value), value))
        return pairs

    def strings(self, node: yaml.Node, field: str) -> tuple[str, ...]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, field, "must be a list of strings", hint=f"e.g. {field.rsplit('.', 1)[-1]}: [a, b]")
        values = []
        for item in node.value:
            if not isinstance(item, yaml.ScalarNode) or item.value == "":
                raise self.error(item, field, "items must be non-empty strings")
            values.append(str(item.value))
        return tuple(values)

    def criteria(self, node: yaml.Node, field: str, *, match_all: bool, allow_rules: bool) -> tuple[Criteria, Any]:
        values: dict[str, Any] = {}
        rules_node = None
        for key, value in self.mapping(node, field):
            name = f"{field}.{key}"
            if key == "rules" and allow_rules:
                rules_node = value
            elif key == "source_ips":
                values[key] = tuple(self.network(item, name) for item in self.strings(value, name))
            elif key == "outcomes":
                values[key] = self.outcomes(value, name)
            elif key in _CRITERIA:
                values[key] = self.strings(value, name)
            else:
                known = ", ".join(_CRITERIA + (("rules",) if allow_rules else ()))
                raise self.error(value, name, f"unknown key '{key}'", hint=f"use one of: {known}")
        return Criteria(match_all=match_all, **values), rules_node

    def outcomes(self, node: yaml.Node, field: str) -> tuple[str, ...]:
        values = self.strings(node, field)
        for item, text in zip(node.value, values, strict=True):
            if text not in _OUTCOMES:
                raise self.error(item, field, f"'{text}' is not an outcome", hint=f"use one of: {', '.join(_OUTCOMES)}")
        return values

    def network(self, text: str, field: str) -> _Network:
        try:
            return ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise AllowListError(
                f"'{text}' is not an address or CIDR range",
                source=self.source,
                field=field,
                hint="write e.g. 10.0.0.0/8, 203.0.113.7 or 2001:db8::/32",
            ) from None


def parse_allowlist(text: str, source: str = "<allow-list>") -> AllowList:
    """An allow-list from YAML text (see the module docstring for the format)."""
    reader = _Reader(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise AllowListError(f"not valid YAML: {getattr(error, 'problem', error)}", source=source, line=line) from None
    if root is None:
        return AllowList(source=source)
    top = dict(reader.mapping(root, "(top)"))
    unknown = sorted(set(top) - {"allow"})
    if unknown:
        raise reader.error(top[unknown[0]], unknown[0], "unknown key", hint="the file holds one mapping: allow: {...}")
    if "allow" not in top or (isinstance(top["allow"], yaml.ScalarNode) and top["allow"].value in ("", "~", "null")):
        return AllowList(source=source)
    common, rules_node = reader.criteria(top["allow"], "allow", match_all=False, allow_rules=True)
    per_rule: dict[str, Criteria] = {}
    if rules_node is not None:
        for name, value in reader.mapping(rules_node, "allow.rules"):
            criteria, _ = reader.criteria(value, f"allow.rules.{name}", match_all=True, allow_rules=False)
            if criteria.empty:
                raise reader.error(
                    value, f"allow.rules.{name}", "gives no criteria", hint="e.g. {users: [...], namespaces: [...]}"
                )
            per_rule[name] = criteria
    return AllowList(common, per_rule, source)


def load_allowlist(path: str | Path) -> AllowList:
    """Read an allow-list file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AllowListError(f"cannot read the allow-list: {error}", source=str(path)) from None
    return parse_allowlist(text, str(path))
