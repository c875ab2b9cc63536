"""Evaluate a policy for a request exactly as kube-apiserver's policy checker does, fast.

The first matching rule wins; no match means level None. A rule's omitStages are the union
of its own and the policy's; a rule's omitManagedFields, when set, overrides the policy's.

Compilation turns each selector into per-value bitmasks (bit i = rule i may match), so a
request costs a few dictionary look-ups and ANDs; results are cached per distinct request shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from kubetrail.model.event import Event, Level, Stage
from kubetrail.model.policy import GroupResources, Policy, PolicyRule
from kubetrail.policy.attributes import RequestAttributes
from kubetrail.policy.match import group_resources_match, path_matches, rule_matches

_STAGE_ORDER = (Stage.REQUEST_RECEIVED, Stage.RESPONSE_STARTED, Stage.RESPONSE_COMPLETE, Stage.PANIC)
_CACHE_LIMIT = 200_000
_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class AuditDecision:
    """What the policy decides for one request: the level, stages to omit, managed fields, the rule."""

    level: Level
    omit_stages: tuple[Stage, ...]
    omit_managed_fields: bool
    rule_index: int | None

    def records(self, stage: Stage) -> bool:
        """True when an event is written for `stage` (level above None and stage not omitted)."""
        return self.level is not Level.NONE and stage not in self.omit_stages


def union_stages(*stage_lists: Iterable[str]) -> tuple[Stage, ...]:
    """The union of stage lists, in the order stages happen."""
    wanted = {stage for stages in stage_lists for stage in stages}
    return tuple(stage for stage in _STAGE_ORDER if stage.value in wanted)


def _bits(rules: list[PolicyRule], selects: Iterable[int]) -> int:
    mask = 0
    for index in selects:
        mask |= 1 << index
    return mask


class _ValueMasks:
    """For one selector: the rules that accept any value, and per listed value the rules naming it."""

    def __init__(self, lists: list[list[str]]) -> None:
        self.free = 0
        self.by_value: dict[str, int] = {}
        for index, values in enumerate(lists):
            if not values:
                self.free |= 1 << index
            for value in values:
                self.by_value[value] = self.by_value.get(value, 0) | (1 << index)

    def mask(self, value: str) -> int:
        return self.free | self.by_value.get(value, 0)

    def mask_any(self, values: Iterable[str]) -> int:
        mask = self.free
        by_value = self.by_value
        for value in values:
            mask |= by_value.get(value, 0)
        return mask


class CompiledPolicy:
    """A policy prepared for fast evaluation; immutable once built."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        rules = policy.rules
        self._decisions = [
            AuditDecision(
                level=Level(rule.level),
                omit_stages=union_stages(policy.omitStages, rule.omitStages),
                omit_managed_fields=policy.omitManagedFields
                if rule.omitManagedFields is None
                else rule.omitManagedFields,
                rule_index=index,
            )
            for index, rule in enumerate(rules)
        ]
        self.default = AuditDecision(
            level=Level.NONE,
            omit_stages=union_stages(policy.omitStages),
            omit_managed_fields=policy.omitManagedFields,
            rule_index=None,
        )
        self._users = _ValueMasks([rule.users for rule in rules])
        self._groups = _ValueMasks([rule.userGroups for rule in rules])
        self._verbs = _ValueMasks([rule.verbs for rule in rules])
        resource_rules = [i for i, rule in enumerate(rules) if rule.namespaces or rule.resources]
        url_rules = [i for i, rule in enumerate(rules) if i not in resource_rules and rule.nonResourceURLs]
        self._any_target = _bits(rules, (i for i in range(len(rules)) if i not in resource_rules + url_rules))
        named = [i for i in resource_rules if any(entry.resourceNames for entry in rules[i].resources)]
        self._named_rules = named
        self._unnamed_rules = [i for i in resource_rules if i not in named]
        self._url_rules = url_rules
        self._user_cache: dict[tuple[str, ...], int] = {}
        self._resource_cache: dict[tuple[str, str, str, str], tuple[int, tuple[tuple[int, frozenset[str]], ...]]] = {}
        self._path_cache: dict[str, int] = {}
        self._named_values = frozenset(
            name for i in named for entry in rules[i].resources for name in entry.resourceNames
        )
        self._event_cache: dict[tuple[object, ...], AuditDecision] = {}
        self._url_event_cache: dict[tuple[str, ...], AuditDecision] = {}

    def __len__(self) -> int:
        return len(self._decisions)

    def _user_mask(self, user: str, groups: tuple[str, ...] | list[str]) -> int:
        key = (user, *groups)
        mask = self._user_cache.get(key)
        if mask is None:
            mask = self._users.mask(user) & self._groups.mask_any(groups)
            _remember(self._user_cache, key, mask)
        return mask

    def _resource_mask(self, namespace: str, group: str, resource: str, subresource: str, name: str) -> int:
        key = (namespace, group, resource, subresource)
        entry: tuple[int, tuple[tuple[int, frozenset[str]], ...]] | None = self._resource_cache.get(key)
        if entry is None:
            probe = RequestAttributes(namespace=namespace, api_group=group, resource=resource, subresource=subresource)
            rules = self.policy.rules
            mask = self._any_target
            for index in self._unnamed_rules:
                if _resource_target_matches(rules[index], probe):
                    mask |= 1 << index
            candidates: list[tuple[int, frozenset[str]]] = []
            for index in self._named_rules:
                names = _names_admitting(rules[index], probe)
                if names is None:
                    mask |= 1 << index
                elif names:
                    candidates.append((1 << index, names))
            entry = (mask, tuple(candidates))
            _remember(self._resource_cache, key, entry)
        mask, named = entry
        for bit, names in named:
            if name in names:
                mask |= bit
        return mask

    def _path_mask(self, path: str) -> int:
        mask = self._path_cache.get(path)
        if mask is None:
            rules = self.policy.rules
            mask = self._any_target
            for index in self._url_rules:
                if any(path_matches(path, spec) for spec in rules[index].nonResourceURLs):
                    mask |= 1 << index
            _remember(self._path_cache, path, mask)
        return mask

    def _decide(self, mask: int) -> AuditDecision:
        if not mask:
            return self.default
        return self._decisions[(mask & -mask).bit_length() - 1]

    def evaluate(self, attrs: RequestAttributes) -> AuditDecision:
        """The decision for one request."""
        mask = self._user_mask(attrs.user, attrs.groups) & self._verbs.mask(attrs.verb)
        if mask:
            if attrs.is_resource_request:
                mask &= self._resource_mask(
                    attrs.namespace, attrs.api_group, attrs.resource, attrs.subresource, attrs.name
                )
            else:
                mask &= self._path_mask(attrs.path)
        return self._decide(mask)

    def evaluate_event(self, event: Event) -> AuditDecision:
        """The decision for the request an event records (its authenticated user, not the impersonated one).

        Cached per request shape: object names matter only when some rule lists resourceNames.
        """
        user = event.user
        ref = event.objectRef
        if ref is None:
            url_key = (event.path, event.verb, user.username, *user.groups)
            decision = self._url_event_cache.get(url_key)
            if decision is None:
                mask = self._user_mask(user.username, user.groups) & self._verbs.mask(event.verb)
                decision = self._decide(mask & self._path_mask(event.path) if mask else 0)
                _remember(self._url_event_cache, url_key, decision)
            return decision
        name = ref.name
        key = (
            user.username,
            event.verb,
            ref.namespace,
            ref.apiGroup,
            ref.resource,
            ref.subresource,
            name if name in self._named_values else None,
            *user.groups,
        )
        decision = self._event_cache.get(key)
        if decision is None:
            mask = self._user_mask(user.username, user.groups) & self._verbs.mask(event.verb)
            if mask:
                mask &= self._resource_mask(ref.namespace, ref.apiGroup, ref.resource, ref.subresource, name)
            decision = self._decide(mask)
            _remember(self._event_cache, key, decision)
        return decision

    def evaluate_events(self, events: Iterable[Event]) -> list[AuditDecision]:
        """Decisions for many events, in order."""
        evaluate_event = self.evaluate_event
        return [evaluate_event(event) for event in events]

    def matching_rules(self, attrs: RequestAttributes) -> list[int]:
        """Indexes of every rule that matches (not only the first): for explanations."""
        return [index for index, rule in enumerate(self.policy.rules) if rule_matches(rule, attrs)]


def _resource_target_matches(rule: PolicyRule, attrs: RequestAttributes) -> bool:
    if rule.namespaces and attrs.namespace not in rule.namespaces:
        return False
    return not rule.resources or any(group_resources_match(entry, attrs) for entry in rule.resources)


def _names_admitting(rule: PolicyRule, attrs: RequestAttributes) -> frozenset[str] | None:
    """For a rule with resourceNames and a request whose name is not yet known: which names match.

    None means any name matches (an entry without names matches); an empty set means none does.
    """
    if rule.namespaces and attrs.namespace not in rule.namespaces:
        return frozenset()
    names: set[str] = set()
    for entry in rule.resources:
        if not entry.resourceNames or not entry.resources:  # an entry without resources ignores names
            if group_resources_match(entry, attrs):
                return None
            continue
        unnamed = GroupResources(group=entry.group, resources=entry.resources)
        if group_resources_match(unnamed, attrs):
            names.update(entry.resourceNames)
    return frozenset(names)


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()  # bounded memory: start over rather than grow without limit
    cache[key] = value


def compile_policy(policy: Policy) -> CompiledPolicy:
    """Prepare `policy` for fast evaluation."""
    return CompiledPolicy(policy)


def evaluate(policy: Policy, attrs: RequestAttributes) -> AuditDecision:
    """Evaluate one request against an uncompiled policy (the straightforward reference path)."""
    for index, rule in enumerate(policy.rules):
        if rule_matches(rule, attrs):
            return AuditDecision(
                level=Level(rule.level),
                omit_stages=union_stages(policy.omitStages, rule.omitStages),
                omit_managed_fields=policy.omitManagedFields
                if rule.omitManagedFields is None
                else rule.omitManagedFields,
                rule_index=index,
            )
    return AuditDecision(
        level=Level.NONE,
        omit_stages=union_stages(policy.omitStages),
        omit_managed_fields=policy.omitManagedFields,
        rule_index=None,
    )
