"""Sigma correlations as stateful rules: event_count → threshold, value_count → distinct values, temporal → sequence.

A correlation counts the events matching the rules it refers to, per `group-by` values, within its
`timespan` (event time). `condition: {gte: N}` alerts once the N-th event arrives (`gt: N` at N+1);
other operators need the end of a window to decide and are refused. Field aliases (`aliases:`) name a
different field per referenced rule for one group-by key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.rule import SigmaRule

from kubetrail.detect.context import EventContext
from kubetrail.detect.fields import Accessor, Value
from kubetrail.detect.sigma.errors import SigmaRuleError
from kubetrail.detect.sigma.fields import Getter
from kubetrail.detect.sigma.matchers import as_text
from kubetrail.detect.sigma.rule import SigmaMatch, level_priority, mitre_ids
from kubetrail.detect.stateful import SequenceSpec, SpecError, StatefulSpec, ThresholdSpec, ValueCountSpec

Predicate = Callable[[EventContext], bool]

_OUTPUT = (
    "%s (Sigma %s correlation: user=%%ka.user.name verb=%%ka.verb "
    "resource=%%ka.target.resource ns=%%ka.target.namespace)"
)


def _label(rule: SigmaCorrelationRule) -> str:
    title = rule.title or "(untitled)"
    return f"{title} ({rule.id})" if rule.id else title


def _value(values: tuple[object, ...]) -> Value:
    texts = [text for text in map(as_text, values) if text is not None]
    if not texts:
        return None
    return texts[0] if len(texts) == 1 else texts


def _accessor(getter: Getter) -> Accessor:
    return lambda ctx: _value(getter(ctx))


def _aliased(per_rule: list[tuple[Predicate, Getter]]) -> Accessor:
    """The field of whichever referenced rule the event matches (first in the rule list)."""

    def accessor(ctx: EventContext) -> Value:
        for predicate, getter in per_rule:
            if predicate(ctx):
                return _value(getter(ctx))
        return None

    return accessor


def _group_field(matches: list[SigmaMatch], field: str, notes: list[str]) -> Accessor:
    """A group-by (or counted) field as the referenced rules name it: one reader when they share a logsource."""
    resolvers = list({id(match.resolve): match.resolve for match in matches}.values())
    for resolve in resolvers:
        notice = resolve(field).notice
        if notice and notice not in notes:
            notes.append(notice)
    if len(resolvers) == 1:
        return _accessor(resolvers[0](field).getter)
    return _aliased([(match.predicate, match.resolve(field).getter) for match in matches])


def _any_of(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    return lambda ctx: any(predicate(ctx) for predicate in predicates)


def _threshold(condition: SigmaCorrelationCondition, rule: SigmaCorrelationRule, name: str) -> int:
    op = condition.op
    count = condition.count
    if op is SigmaCorrelationConditionOperator.GTE:
        wanted = count
    elif op is SigmaCorrelationConditionOperator.GT:
        wanted = count + 1
    else:
        raise SigmaRuleError(
            f"correlation condition '{op.name.lower()}' cannot alert on a stream",
            source=name,
            item=_label(rule),
            hint="use gte or gt: an alert fires when the count is reached",
        )
    if int(wanted) != wanted:
        raise SigmaRuleError(f"correlation count must be a whole number, not {count}", source=name, item=_label(rule))
    return int(wanted)


def compile_correlation(
    rule: SigmaCorrelationRule, name: str, compiled: Mapping[int, SigmaMatch], skipped: set[int]
) -> tuple[StatefulSpec | None, str, list[str]]:
    """The stateful rule for one correlation, or None and why it was skipped; and notices about its fields."""
    notes: list[str] = []
    references = rule.rules or []
    matches: list[SigmaMatch] = []
    by_name: dict[str, SigmaMatch] = {}
    for reference in references:
        target = reference.rule
        if not isinstance(target, SigmaRule):
            raise SigmaRuleError(
                f"refers to the correlation '{reference.reference}': correlations of correlations are not supported",
                source=name,
                item=_label(rule),
            )
        if id(target) in skipped:
            return None, f"refers to '{reference.reference}', a rule of a logsource kubetrail does not evaluate", notes
        match = compiled[id(target)]
        matches.append(match)
        by_name[reference.reference] = match
        if target.name:
            by_name[target.name] = match
        if target.id:
            by_name[str(target.id)] = match
    predicates = [match.predicate for match in matches]
    accessors: dict[str, Accessor] = {}
    for alias in rule.aliases.aliases.values():
        per_rule: list[tuple[Predicate, Getter]] = []
        for reference, field in alias.mapping.items():
            key = str(getattr(reference, "reference", reference))
            target_match = by_name.get(key)
            if target_match is None:
                raise SigmaRuleError(
                    f"alias '{alias.alias}' names the rule '{key}', which the correlation does not refer to",
                    source=name,
                    item=_label(rule),
                )
            resolved = target_match.resolve(field)
            if resolved.notice and resolved.notice not in notes:
                notes.append(resolved.notice)
            per_rule.append((target_match.predicate, resolved.getter))
        accessors[alias.alias] = _aliased(per_rule)
    group_by = tuple(rule.group_by or ())
    for field in group_by:
        if field not in accessors:
            accessors[field] = _group_field(matches, field, notes)
    tags = tuple(str(tag) for tag in rule.tags)
    common = {
        "name": rule.title,
        "priority": level_priority(rule.level.name if rule.level else None),
        "output": _OUTPUT % (rule.title.replace("%", "%%"), rule.type.name.lower()),
        "desc": rule.description or "",
        "tags": tags,
        "mitre": mitre_ids(tags),
        "accessors": accessors,
    }
    window = float(rule.timespan.seconds)
    kind = rule.type
    try:
        if kind is SigmaCorrelationType.EVENT_COUNT:
            assert isinstance(rule.condition, SigmaCorrelationCondition)
            spec: StatefulSpec = ThresholdSpec(
                match=_any_of(predicates),
                group_by=group_by,
                window_s=window,
                count=_threshold(rule.condition, rule, name),
                **common,  # type: ignore[arg-type]
            )
        elif kind is SigmaCorrelationType.VALUE_COUNT:
            assert isinstance(rule.condition, SigmaCorrelationCondition)
            fieldref = rule.condition.fieldref
            if not isinstance(fieldref, str):
                raise SigmaRuleError("value_count needs exactly one field", source=name, item=_label(rule))
            if fieldref not in accessors:
                accessors[fieldref] = _group_field(matches, fieldref, notes)
            spec = ValueCountSpec(
                match=_any_of(predicates),
                group_by=group_by,
                field=fieldref,
                window_s=window,
                count=_threshold(rule.condition, rule, name),
                **common,  # type: ignore[arg-type]
            )
        elif kind in (SigmaCorrelationType.TEMPORAL, SigmaCorrelationType.TEMPORAL_ORDERED):
            if not isinstance(rule.condition, SigmaCorrelationCondition):
                raise SigmaRuleError(
                    "extended (boolean) temporal conditions are not supported", source=name, item=_label(rule)
                )
            if rule.condition.op is not SigmaCorrelationConditionOperator.GTE or rule.condition.count > len(predicates):
                raise SigmaRuleError(
                    "a temporal correlation alerts when all its rules matched: use no condition or "
                    f"gte: {len(predicates)}",
                    source=name,
                    item=_label(rule),
                )
            spec = SequenceSpec(
                match=lambda ctx: True,
                by=group_by,
                steps=tuple(predicates),
                within_s=window,
                ordered=kind is SigmaCorrelationType.TEMPORAL_ORDERED,
                **common,  # type: ignore[arg-type]
            )
        else:
            raise SigmaRuleError(
                f"correlation type '{kind.name.lower()}' is not supported",
                source=name,
                item=_label(rule),
                hint="supported: event_count, value_count, temporal, temporal_ordered",
            )
    except SpecError as error:
        raise SigmaRuleError(str(error), source=name, item=_label(rule)) from None
    return spec, "", notes
