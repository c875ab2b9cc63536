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
    SigmaNumber,
    SigmaString,
    SigmaType,
    SpecialChars,
)

from kubetrail.detect.context import EventContext
from kubetrail.detect.sigma.fields import (
    DECISION_PATH,
    FieldResolver,
    Getter,
    Resolved,
    audit_field,
    code_getter,
    document_strings,
    is_typed,
    path_getter,
    text_getter,
)
from kubetrail.detect.sigma.matchers import (
    Matcher,
    UnsupportedValue,
    any_matcher,
    as_text,
    exact_literal,
    folded_literals,
    value_matcher,
)

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
    resolve: FieldResolver = audit_field
    """How the rule's field names read an event: audit event paths, or another logsource's names mapped onto them."""

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
        operands: list[Compiled] = []
        if isinstance(node, ConditionOR):
            # `field: [a, b, c]` arrives as an OR of one leaf per value: read the field once for all of them.
            values: dict[str, list[SigmaType]] = {}
            for arg in node.args:
                if isinstance(arg, ConditionFieldEqualsValueExpression) and _plain(arg.field, arg.value):
                    values.setdefault(arg.field, []).append(arg.value)
                else:
                    operands.append(self.compile(arg))
            operands.extend(self._field(name, listed) for name, listed in values.items())
        else:
            operands = [self.compile(arg) for arg in node.args]
        parts = sorted(operands, key=lambda part: part.cost)
        predicates = tuple(part.predicate for part in parts)
        cost = sum(part.cost for part in parts)
        if len(predicates) == 1:
            return parts[0]
        return Compiled(_chain(predicates, conjunction=isinstance(node, ConditionAND)), cost)

    def _resolve(self, name: str, first: SigmaType) -> Resolved:
        if self.resolve is audit_field and name == "responseStatus.code" and _is_word(first):
            return Resolved(
                path_getter(DECISION_PATH),
                DECISION_PATH,
                notice=f"field 'responseStatus.code' compared with the string '{first}': "
                f"read as the authorization decision ({DECISION_PATH})",
            )
        return self.resolve(name)

    def _field(self, name: str, value: SigmaType | list[SigmaType]) -> Compiled:
        """A field compared with one value, or with any of several plain values."""
        resolved = self._resolve(name, value[0] if isinstance(value, list) else value)
        if resolved.notice:
            self._notice(resolved.notice)
        getter = resolved.getter
        path = resolved.path
        cost = _cost(path) if path is not None else _COST_BODY
        code = code_getter(path) if path is not None else None
        listed = value if isinstance(value, list) else [value]
        if code is not None and all(type(each) is SigmaNumber and isinstance(each.number, int) for each in listed):
            codes = frozenset(each.number for each in listed if isinstance(each, SigmaNumber)) - {0}
            return Compiled(lambda ctx: code(ctx) in codes, cost)
        text = resolved.text or (text_getter(path) if path is not None else None)
        if text is not None and isinstance(value, list | SigmaString | SigmaNumber):
            return Compiled(_text_predicate(text, value if isinstance(value, list) else [value]), cost)
        if isinstance(value, list):
            return Compiled(_any_value(getter, any_matcher(value)), cost)
        if isinstance(value, SigmaNull):
            return Compiled(lambda ctx: all(each is None for each in getter(ctx)), cost)
        if isinstance(value, SigmaExists):
            wanted = value.exists
            return Compiled(lambda ctx: any(each is not None for each in getter(ctx)) is wanted, cost)
        if isinstance(value, SigmaFieldReference):
            other = self.resolve(value.field)
            if other.notice:
                self._notice(other.notice)
            return Compiled(_reference(getter, other.getter, value), cost + _cost(value.field))
        return Compiled(_any_value(getter, value_matcher(value)), cost)

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


def _chain(predicates: tuple[Predicate, ...], *, conjunction: bool) -> Predicate:
    """`a and b and c` (or `a or b or c`) as nested two-operand closures: no generator per event."""
    combined = predicates[-1]
    for predicate in reversed(predicates[:-1]):
        combined = _and(predicate, combined) if conjunction else _or(predicate, combined)
    return combined


def _and(first: Predicate, second: Predicate) -> Predicate:
    return lambda ctx: first(ctx) and second(ctx)


def _or(first: Predicate, second: Predicate) -> Predicate:
    return lambda ctx: first(ctx) or second(ctx)


def required_verbs(node: object) -> frozenset[str] | None:
    """The verbs an event must have for the condition to hold, when the condition says so outright.

    The engine uses them as an index (events of other verbs skip the rule). Sigma compares verbs
    case-insensitively; the apiserver always writes verbs in lower case, so lower-cased literals suffice.
    """
    if isinstance(node, ConditionAND):
        for arg in node.args:
            found = required_verbs(arg)
            if found is not None:
                return found
        return None
    leaves = node.args if isinstance(node, ConditionOR) else [node]
    verbs: set[str] = set()
    for leaf in leaves:
        if not (isinstance(leaf, ConditionFieldEqualsValueExpression) and leaf.field == "verb"):
            return None
        value = leaf.value
        literal = exact_literal(value)
        if not literal:
            return None
        verbs.add(literal if isinstance(value, SigmaCasedString) else literal.lower())
    return frozenset(verbs)


def _plain(name: str, value: SigmaType) -> bool:
    """Whether a leaf compares its field with a value (not null, exists or another field; not the decision)."""
    if isinstance(value, SigmaNull | SigmaExists | SigmaFieldReference):
        return False
    return not (name == "responseStatus.code" and _is_word(value))


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


def _text_predicate(text: Callable[[EventContext], str], values: list[SigmaType]) -> Predicate:
    """A single-valued string field against values: a set look-up when they are plain case-insensitive strings."""
    exact = folded_literals(values)
    if exact is not None:
        return lambda ctx: text(ctx).lower() in exact
    matcher = any_matcher(values)

    def predicate(ctx: EventContext) -> bool:
        found = text(ctx)
        return bool(found) and matcher(found)

    return predicate


def _any_value(getter: Callable[[EventContext], tuple[object, ...]], matcher: Matcher) -> Predicate:
    def predicate(ctx: EventContext) -> bool:
        return any(map(matcher, getter(ctx)))

    return predicate


def _reference(getter: Getter, other: Getter, value: SigmaFieldReference) -> Predicate:
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
