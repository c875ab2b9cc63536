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

from kubetrail.model.event import Event, Level, ObjectReference, Stage
from kubetrail.model.policy import GroupResources, Policy
from kubetrail.policy.attributes import RequestAttributes
from kubetrail.policy.match import group_matches, path_matches, resource_matches, rule_matches

_STAGE_ORDER = (Stage.REQUEST_RECEIVED, Stage.RESPONSE_STARTED, Stage.RESPONSE_COMPLETE, Stage.PANIC)
_CACHE_LIMIT = 200_000
_WARM_ENTRIES = 4096
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


def _bits(indexes: Iterable[int]) -> int:
    mask = 0
    for index in indexes:
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


# Per (API group, resource, subresource): the resource rules whose `resources` admit any object name,
# and per rule that admits only some names, its bit and those names.
_KindEntry = tuple[int, tuple[tuple[int, frozenset[str]], ...]]


class CompiledPolicy:
    """A policy prepared for fast evaluation; immutable once built.

    Each selector is independent of the others, so a request's candidate rules are the AND of one
    bitmask per selector: users, groups, verbs, namespaces, and the resource kind (or the path).
    Kind and path masks are cached (few distinct values); whole decisions are cached per request
    shape, and a cache miss still costs only a handful of dictionary look-ups.
    """

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
        resource_rules = [i for i, rule in enumerate(rules) if rule.namespaces or rule.resources]
        url_rules = [i for i, rule in enumerate(rules) if i not in resource_rules and rule.nonResourceURLs]
        users = _ValueMasks([rule.users for rule in rules])
        groups = _ValueMasks([rule.userGroups for rule in rules])
        verbs = _ValueMasks([rule.verbs for rule in rules])
        namespaces = _ValueMasks([rule.namespaces for rule in rules])
        self._users_free, self._users_by = users.free, users.by_value
        self._groups_free, self._groups_by = groups.free, groups.by_value
        self._verbs_free, self._verbs_by = verbs.free, verbs.by_value
        self._ns_free, self._ns_by = namespaces.free, namespaces.by_value
        self._any_target = _bits(i for i in range(len(rules)) if i not in resource_rules and i not in url_rules)
        self._resource_rules = resource_rules
        self._url_rules = url_rules
        named_entries = [entry for i in resource_rules for entry in rules[i].resources if entry.resourceNames]
        self._named_values = frozenset(name for entry in named_entries for name in entry.resourceNames)
        # The resources whose object names can matter; a wildcard spec makes every resource's names matter.
        kinds = {spec.partition("/")[0] for entry in named_entries for spec in entry.resources}
        self._named_kinds: frozenset[str] | None = None if "*" in kinds else frozenset(kinds)
        self._kind_cache: dict[tuple[str, str, str], _KindEntry] = {}
        self._path_cache: dict[str, int] = {}
        self._event_cache: dict[tuple[object, ...], tuple[list[str], AuditDecision]] = {}
        self._groups_cache: dict[tuple[tuple[object, ...], tuple[str, ...]], AuditDecision] = {}
        self._url_event_cache: dict[tuple[object, ...], AuditDecision] = {}
        self._seen = 0  # events decided so far, and how many of them missed the decision caches
        self._misses = 0

    def __len__(self) -> int:
        return len(self._decisions)

    def _user_mask(self, user: str, groups: Iterable[str]) -> int:
        mask = self._users_free | self._users_by.get(user, 0)
        if not mask:
            return 0
        group_mask = self._groups_free
        by_group = self._groups_by
        for group in groups:
            group_mask |= by_group.get(group, 0)
        return mask & group_mask

    def _kind_entry(self, group: str, resource: str, subresource: str) -> _KindEntry:
        key = (group, resource, subresource)
        entry = self._kind_cache.get(key)
        if entry is None:
            rules = self.policy.rules
            mask = 0
            named: list[tuple[int, frozenset[str]]] = []
            for index in self._resource_rules:
                names = _names_admitted(rules[index].resources, group, resource, subresource)
                if names is None:
                    mask |= 1 << index
                elif names:
                    named.append((1 << index, names))
            entry = (mask, tuple(named))
            _remember(self._kind_cache, key, entry)
        return entry

    def _resource_mask(self, namespace: str, group: str, resource: str, subresource: str, name: str) -> int:
        """Rules whose namespaces and resources admit the request (plus rules with no target selector)."""
        kind_mask, named = self._kind_entry(group, resource, subresource)
        for bit, names in named:
            if name in names:
                kind_mask |= bit
        return self._any_target | (kind_mask & (self._ns_free | self._ns_by.get(namespace, 0)))

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
        mask = self._user_mask(attrs.user, attrs.groups) & (self._verbs_free | self._verbs_by.get(attrs.verb, 0))
        if mask:
            if attrs.is_resource_request:
                mask &= self._resource_mask(
                    attrs.namespace, attrs.api_group, attrs.resource, attrs.subresource, attrs.name
                )
            else:
                mask &= self._path_mask(attrs.path)
        return self._decide(mask)

    def _decide_url(self, event: Event) -> AuditDecision:
        user = event.user
        mask = self._user_mask(user.username, user.groups) & (self._verbs_free | self._verbs_by.get(event.verb, 0))
        return self._decide(mask & self._path_mask(event.path) if mask else 0)

    def _decide_resource(self, event: Event, ref: ObjectReference) -> AuditDecision:
        user = event.user
        mask = self._user_mask(user.username, user.groups) & (self._verbs_free | self._verbs_by.get(event.verb, 0))
        if mask:
            mask &= self._resource_mask(ref.namespace, ref.apiGroup, ref.resource, ref.subresource, ref.name)
        return self._decide(mask)

    def evaluate_event(self, event: Event) -> AuditDecision:
        """The decision for the request an event records (its authenticated user, not the impersonated one).

        Cached per request shape: object names matter only when some rule lists resourceNames.
        """
        return self.evaluate_events((event,))[0]

    def evaluate_events(self, events: Iterable[Event]) -> list[AuditDecision]:
        """Decisions for many events, in order (one tight loop: the cache-hit path is the hot path)."""
        decisions: list[AuditDecision] = []
        append = decisions.append
        cache = self._event_cache
        cache_get = cache.get
        by_groups = self._groups_cache
        by_groups_get = by_groups.get
        url_cache = self._url_event_cache
        named = self._named_values
        named_kinds = self._named_kinds
        seen = self._seen
        misses = self._misses
        for event in events:
            user = event.user
            ref = event.objectRef
            if ref is None:
                url_key = (event.requestURI, event.verb, user.username, tuple(user.groups))
                decision = url_cache.get(url_key)
                if decision is None:
                    decision = self._decide_url(event)
                    misses += 1
                    if _worth_caching(len(url_cache), seen + len(decisions) - misses):
                        _remember(url_cache, url_key, decision)
                append(decision)
                continue
            resource = ref.resource
            if named_kinds is not None and resource not in named_kinds:
                key: tuple[object, ...] = (
                    user.username,
                    event.verb,
                    ref.namespace,
                    ref.apiGroup,
                    resource,
                    ref.subresource,
                )
            else:
                name = ref.name
                key = (
                    user.username,
                    event.verb,
                    ref.namespace,
                    ref.apiGroup,
                    resource,
                    ref.subresource,
                    name if name in named else None,
                )
            # groups are compared, not hashed: one identity nearly always carries the same groups, and
            # comparing two short lists is cheaper than building a tuple of them for every event
            entry = cache_get(key)
            groups = user.groups
            if entry is not None and entry[0] == groups:
                append(entry[1])
                continue
            full_key = (key, tuple(groups))
            decision = by_groups_get(full_key)
            if decision is None:
                decision = self._decide_resource(event, ref)
                misses += 1
                if _worth_caching(len(by_groups), seen + len(decisions) - misses):
                    _remember(by_groups, full_key, decision)
            if entry is None and _worth_caching(len(cache), seen + len(decisions) - misses):
                _remember(cache, key, (list(groups), decision))
            append(decision)
        self._seen = seen + len(decisions)
        self._misses = misses
        return decisions

    def matching_rules(self, attrs: RequestAttributes) -> list[int]:
        """Indexes of every rule that matches (not only the first): for explanations."""
        return [index for index, rule in enumerate(self.policy.rules) if rule_matches(rule, attrs)]


def _names_admitted(
    entries: list[GroupResources], group: str, resource: str, subresource: str
) -> frozenset[str] | None:
    """Which object names let a rule's `resources` match this kind of request, as the checker decides.

    None means every name does (no resources listed, or a matching entry without resourceNames);
    otherwise the union of the resourceNames of the matching entries (empty: no name matches).
    """
    if not entries:
        return None
    names: set[str] = set()
    for entry in entries:
        if not group_matches(entry.group, group):
            continue
        if not entry.resources:
            return None
        if any(resource_matches(resource, subresource, spec) for spec in entry.resources):
            if not entry.resourceNames:
                return None
            names.update(entry.resourceNames)
    return frozenset(names)


def _worth_caching(size: int, hits: int) -> bool:
    """Keep caching while the cache is small or its entries are reused (when every request is new, stop)."""
    return size < _WARM_ENTRIES or hits >= size


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
