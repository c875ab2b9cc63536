"""Generate a commented audit policy from a preset, optionally tuned to a cluster's recorded traffic.

Tuning finds the read-only requests (get, list, watch) of the cluster's own machinery — kubelets,
control-plane components, kube-system service accounts — that the preset still records and that
write the most bytes, and drops them with `level: None` rules placed first. It never drops requests
by people, by service accounts of other namespaces, by anonymous callers, writes of any kind, or
reads of Secrets, ConfigMaps, tokens, RBAC objects or interactive subresources (exec, attach, ...).
The result is loaded, validated and linted like any policy file; a tuned rule that lint objects to
(e.g. because it makes a preset rule unreachable) is left out.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from kubetrail.model.event import Event
from kubetrail.policy.evaluate import CompiledPolicy, compile_policy
from kubetrail.policy.lint import exit_code, lint_policy
from kubetrail.policy.load import LoadedPolicy, load_policy_bytes
from kubetrail.policy.presets import preset_text
from kubetrail.policy.record import record

READ_ONLY_VERBS = frozenset({"get", "list", "watch"})
CONTROL_PLANE_USERS = frozenset(
    {"system:kube-scheduler", "system:kube-controller-manager", "system:kube-proxy", "system:apiserver"}
)
NODE_USER_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
KUBE_SYSTEM_SA_PREFIX = "system:serviceaccount:kube-system:"
SENSITIVE_RESOURCES = frozenset(
    {
        ("", "secrets"),
        ("", "configmaps"),
        ("", "serviceaccounts"),
        ("authentication.k8s.io", "tokenreviews"),
        ("authorization.k8s.io", "subjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectrulesreviews"),
        ("authorization.k8s.io", "localsubjectaccessreviews"),
        ("certificates.k8s.io", "certificatesigningrequests"),
    }
)
SENSITIVE_GROUPS = frozenset({"rbac.authorization.k8s.io"})
INTERACTIVE_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "proxy"})

# (selector, value): ("users", name) or ("userGroups", "system:nodes")
Identity = tuple[str, str]


@dataclass(frozen=True)
class NoiseRule:
    """A tuned `level: None` rule: one identity and verb, the resources it reads, and what it cost."""

    identity: Identity
    verb: str
    resources: tuple[tuple[str, str], ...]  # (API group, resource or resource/subresource)
    events: int
    bytes: int
    share: float

    def to_yaml(self) -> str:
        """The rule as YAML lines (two-space indented list item) with a comment saying why."""
        selector, value = self.identity
        lines = [
            f"  # tuned: {value} {self.verb} — {self.share:.1%} of the bytes the preset wrote ({self.events:,} events)",
            "  - level: None",
            f"    {selector}: [{json.dumps(value)}]",
            f"    verbs: [{json.dumps(self.verb)}]",
            "    resources:",
        ]
        by_group: dict[str, list[str]] = {}
        for group, resource in self.resources:
            by_group.setdefault(group, []).append(resource)
        for group, names in by_group.items():
            lines.append(f"      - group: {json.dumps(group)}")
            lines.append(f"        resources: [{', '.join(json.dumps(name) for name in names)}]")
        return "\n".join(lines) + "\n"


def identity_of(event: Event) -> Identity | None:
    """The selector a tuned rule would use for the caller, or None when the caller must stay recorded."""
    user = event.user.username
    if user.startswith(NODE_USER_PREFIX) and NODES_GROUP in event.user.groups:
        return ("userGroups", NODES_GROUP)
    if user in CONTROL_PLANE_USERS or user.startswith(KUBE_SYSTEM_SA_PREFIX):
        return ("users", user)
    return None


def tunable(event: Event) -> bool:
    """True for a read-only resource request of non-sensitive objects (the only kind tuning may drop)."""
    ref = event.objectRef
    if ref is None or event.verb not in READ_ONLY_VERBS or event.impersonatedUser is not None:
        return False
    if ref.apiGroup in SENSITIVE_GROUPS or (ref.apiGroup, ref.resource) in SENSITIVE_RESOURCES:
        return False
    return ref.subresource not in INTERACTIVE_SUBRESOURCES


class TrafficProfile:
    """What a base policy writes for a cluster's traffic, per tunable (identity, verb, resource)."""

    def __init__(self, base: CompiledPolicy) -> None:
        self.base = base
        self.total_bytes = 0
        self._events: Counter[tuple[Identity, str, str, str]] = Counter()
        self._bytes: Counter[tuple[Identity, str, str, str]] = Counter()
        self._encoder = msgspec.json.Encoder()

    def add(self, event: Event) -> None:
        """Account for one recorded event."""
        written = record(event, self.base.evaluate_event(event))
        if written is None:
            return
        size = len(self._encoder.encode(written)) + 1
        self.total_bytes += size
        if not tunable(event):
            return
        identity = identity_of(event)
        if identity is None:
            return
        ref = event.objectRef
        assert ref is not None
        resource = f"{ref.resource}/{ref.subresource}" if ref.subresource else ref.resource
        key = (identity, event.verb, ref.apiGroup, resource)
        self._events[key] += 1
        self._bytes[key] += size

    def add_all(self, events: Iterable[Event]) -> None:
        """Account for many events."""
        for event in events:
            self.add(event)

    def noise_rules(self, *, top: int = 8, min_share: float = 0.01) -> list[NoiseRule]:
        """The heaviest tunable tuples (each at least `min_share` of all bytes), one rule per identity and verb."""
        if not self.total_bytes:
            return []
        chosen = [key for key, size in self._bytes.most_common(top) if size / self.total_bytes >= min_share]
        grouped: dict[tuple[Identity, str], list[tuple[str, str, str, str]]] = {}
        for identity, verb, group, resource in chosen:
            grouped.setdefault((identity, verb), []).append((identity[1], verb, group, resource))
        rules: list[NoiseRule] = []
        for (identity, verb), keys in grouped.items():
            full_keys = [(identity, verb, group, resource) for _, _, group, resource in keys]
            size = sum(self._bytes[key] for key in full_keys)
            rules.append(
                NoiseRule(
                    identity=identity,
                    verb=verb,
                    resources=tuple(sorted((group, resource) for _, _, group, resource in full_keys)),
                    events=sum(self._events[key] for key in full_keys),
                    bytes=size,
                    share=size / self.total_bytes,
                )
            )
        return sorted(rules, key=lambda rule: -rule.bytes)


def _insert_rules(text: str, rules: list[NoiseRule], source: str) -> str:
    marker = "\nrules:\n"
    head, found, tail = text.partition(marker)
    if not found or not rules:
        return text
    block = (
        f"  # Tuned to the traffic in {source}: the heaviest read-only requests of the cluster's own machinery,\n"
        f"  # dropped before anything else (the preset's numbered rules follow, {len(rules)} places later).\n"
    )
    block += "".join(rule.to_yaml() for rule in rules)
    return head + marker + block + tail


def generate_policy(preset: str, tuned: list[NoiseRule] | None = None, *, source: str = "the cluster log") -> str:
    """The preset's YAML with `tuned` rules placed first, keeping only those that leave lint's verdict unchanged."""
    base = preset_text(preset).decode()
    baseline = _lint_code(base, preset)
    kept: list[NoiseRule] = []
    for rule in tuned or []:
        if _lint_code(_insert_rules(base, [*kept, rule], source), preset) <= baseline:
            kept.append(rule)
    return _insert_rules(base, kept, source)


def _lint_code(text: str, preset: str) -> int:
    return exit_code(lint_policy(load_generated(text, preset)))


def load_generated(text: str, preset: str) -> LoadedPolicy:
    """Load generated text as the apiserver would (raises PolicyError if it would refuse it)."""
    return load_policy_bytes(text.encode(), source=f"<generated {preset}>")


def tune(preset: str, events: Iterable[Event], *, top: int = 8, min_share: float = 0.01) -> list[NoiseRule]:
    """The noise rules for `events` on top of `preset`."""
    profile = TrafficProfile(compile_policy(load_policy_bytes(preset_text(preset)).policy))
    profile.add_all(events)
    return profile.noise_rules(top=top, min_share=min_share)
