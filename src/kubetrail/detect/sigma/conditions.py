"""Compile a pySigma condition tree into one predicate over an event, once per rule.

pySigma resolves selections, `1 of selection_*`, `all of them`, value lists and the `all` modifier
into a tree of AND / OR / NOT over field-equals-value and keyword leaves; each leaf becomes a closure
(field getter + value matcher), and the cheapest operands of an AND / OR are tried first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    SigmaCasedString,
    SigmaExists,
    SigmaFieldReference,
    SigmaNull,
    SigmaString,
    SigmaType,
    SpecialChars,
)

from kubetrail.detect.context import EventContext
from kubetrail.detect.sigma.fields import DECISION_PATH, document_strings, field_getter, is_typed, path_getter
from kubetrail.detect.sigma.matchers import Matcher, UnsupportedValue, as_text, value_matcher

Predicate = Callable[[EventContext], bool]

_COST_TYPED = 1
_COST_BODY = 5
_COST_DOCUMENT = 20
_COST_KEYWORD = 50


@dataclass
class Compiled:
    """A compiled (sub)condition: its predicate and a rough cost for ordering operands."""

    predicate: Predicate
    cost: int


@dataclass
class ConditionCompiler:
    """Compiles condition trees; collects notices about field names that had to be mapped."""

    notices: list[str] = field(default_factory=list)

    def _notice(self, text: str) -> None:
        if text not in self.notices:
            self.notices.append(text)

    def compile(self, node: object) -> Compiled:
        if isinstance(node, ConditionAND | ConditionOR):
            return self._junction(node)
        if isinstance(node, ConditionNOT):
            inner = self.compile(node.args[0])
            negated = inner.predicate
            return Compiled(lambda ctx: not negated(ctx), inner.cost)
        if isinstance(node, ConditionFieldEqualsValueExpression):
            return self._field(node.field, node.value)
        if isinstance(node, ConditionValueExpression):
            return self._keyword(node.value)
        if node is None:
            raise UnsupportedValue("the condition selects nothing")
        raise UnsupportedValue(f"condition element {type(node).__name__} is not supported")

    def _junction(self, node: ConditionItem) -> Compiled:
        parts = sorted((self.compile(arg) for arg in node.args), key=lambda part: part.cost)
        predicates = tuple(part.predicate for part in parts)
        cost = sum(part.cost for part in parts)
        if isinstance(node, ConditionAND):
            if len(predicates) == 2:
                first, second = predicates
                return Compiled(lambda ctx: first(ctx) and second(ctx), cost)
            return Compiled(lambda ctx: all(predicate(ctx) for predicate in predicates), cost)
        if len(predicates) == 2:
            first, second = predicates
            return Compiled(lambda ctx: first(ctx) or second(ctx), cost)
        return Compiled(lambda ctx: any(predicate(ctx) for predicate in predicates), cost)

    def _field(self, name: str, value: SigmaType) -> Compiled:
        if name == "responseStatus.code" and _is_word(value):
            self._notice(
                f"field 'responseStatus.code' compared with the string '{value}': "
                f"read as the authorization decision ({DECISION_PATH})"
            )
            getter = path_getter(DECISION_PATH)
            cost = _COST_TYPED
        else:
            getter, alias = field_getter(name)
            if alias is not None:
                self._notice(f"field '{name}' is not in audit events; {alias.reason}")
            cost = _cost(name if alias is None else alias.paths[0])
        if isinstance(value, SigmaNull):
            return Compiled(lambda ctx: all(each is None for each in getter(ctx)), cost)
        if isinstance(value, SigmaExists):
            wanted = value.exists
            return Compiled(lambda ctx: any(each is not None for each in getter(ctx)) is wanted, cost)
        if isinstance(value, SigmaFieldReference):
            return Compiled(_reference(getter, value), cost + _cost(value.field))
        matcher = value_matcher(value)
        return Compiled(_any_value(getter, matcher), cost)

    def _keyword(self, value: SigmaType) -> Compiled:
        if isinstance(value, SigmaString) and not (
            value.startswith(SpecialChars.WILDCARD_MULTI) or value.endswith(SpecialChars.WILDCARD_MULTI)
        ):
            wrapped = SpecialChars.WILDCARD_MULTI + value + SpecialChars.WILDCARD_MULTI
            if isinstance(value, SigmaCasedString):
                wrapped = SigmaCasedString.from_sigma_string(wrapped)
            value = wrapped
        matcher = value_matcher(value)
        return Compiled(_any_value(document_strings, matcher), _COST_KEYWORD)


def _is_word(value: SigmaType) -> bool:
    if not isinstance(value, SigmaString):
        return False
    plain = str(value)
    return bool(plain) and not plain.strip().lstrip("-").isdigit() and not value.contains_special()


def _cost(path: str) -> int:
    """Typed fields are cheapest, request/response bodies are parsed once, the whole document last."""
    if is_typed(path):
        return _COST_TYPED
    if path.partition(".")[0] in ("requestObject", "responseObject"):
        return _COST_BODY
    return _COST_DOCUMENT


def _any_value(getter: Callable[[EventContext], tuple[object, ...]], matcher: Matcher) -> Predicate:
    def predicate(ctx: EventContext) -> bool:
        return any(matcher(each) for each in getter(ctx))

    return predicate


def _reference(getter: Callable[[EventContext], tuple[object, ...]], value: SigmaFieldReference) -> Predicate:
    other, _alias = field_getter(value.field)

    def predicate(ctx: EventContext) -> bool:
        mine = [text for text in map(as_text, getter(ctx)) if text is not None]
        theirs = [text for text in map(as_text, other(ctx)) if text is not None]
        for left in mine:
            for right in theirs:
                if value.starts_with and left.startswith(right):
                    return True
                if value.ends_with and left.endswith(right):
                    return True
                if not value.starts_with and not value.ends_with and left == right:
                    return True
        return False

    return predicate
