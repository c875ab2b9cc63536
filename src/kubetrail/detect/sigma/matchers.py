"""Sigma values compiled into predicates over one event value, with Sigma's matching semantics.

Strings match case-insensitively unless `|cased`; `*` and `?` are wildcards (pySigma has already turned
`contains`/`startswith`/`endswith`, `base64`, `windash` … into plain wildcard strings or expansions).
Numbers and booleans in the event compare as their JSON text against strings; `re` searches
(unanchored, Python syntax, flags from `|i|m|s`); `cidr` tests an IP address; `lt|lte|gt|gte` compare numbers.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence

from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExpansion,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
    SpecialChars,
)

Matcher = Callable[[object], bool]


class UnsupportedValue(ValueError):
    """A Sigma value type that cannot be evaluated against single events in-process."""


def as_text(value: object) -> str | None:
    """An event value as the text Sigma compares strings with; None for objects, arrays and null."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def _pattern(parts: list[str | SpecialChars], fold: bool) -> str:
    out: list[str] = []
    for part in parts:
        if part is SpecialChars.WILDCARD_MULTI:
            out.append(".*")
        elif part is SpecialChars.WILDCARD_SINGLE:
            out.append(".")
        elif isinstance(part, str):
            out.append(re.escape(part.lower() if fold else part))
        else:
            raise UnsupportedValue(f"placeholder {part} is not supported (no placeholder values are configured)")
    return "".join(out)


def _shape(value: SigmaString) -> tuple[str, str | None]:
    """The pattern's kind (`exact`, `prefix`, `suffix`, `contains`, `any` or `regex`) and its literal text."""
    parts: list[str | SpecialChars] = list(value.s)  # type: ignore[arg-type]
    star = SpecialChars.WILDCARD_MULTI
    if all(isinstance(part, str) for part in parts):
        return "exact", "".join(parts)  # type: ignore[arg-type]
    if len(parts) == 1 and parts[0] is star:
        return "any", None
    if len(parts) == 2 and parts[0] is star and isinstance(parts[1], str):
        return "suffix", parts[1]
    if len(parts) == 2 and parts[1] is star and isinstance(parts[0], str):
        return "prefix", parts[0]
    if len(parts) == 3 and parts[0] is star and parts[2] is star and isinstance(parts[1], str):
        return "contains", parts[1]
    return "regex", None


def exact_literal(value: SigmaType) -> str | None:
    """The text of a string value without wildcards (as written), else None."""
    if not isinstance(value, SigmaString):
        return None
    kind, literal = _shape(value)
    return literal if kind == "exact" else None


def string_matcher(value: SigmaString) -> Matcher:
    """Equality with wildcards; fast paths for exact, prefix, suffix and substring patterns."""
    fold = not isinstance(value, SigmaCasedString)
    kind, literal = _shape(value)
    if kind == "any":
        return lambda event_value: as_text(event_value) is not None
    if kind == "regex":
        compiled = re.compile(_pattern(list(value.s), fold), re.DOTALL)  # type: ignore[arg-type]

        def regex(event_value: object) -> bool:
            text = as_text(event_value)
            return text is not None and compiled.fullmatch(text.lower() if fold else text) is not None

        return regex
    assert literal is not None
    needle = literal.lower() if fold else literal
    test: Callable[[str], bool]
    if kind == "exact":
        test = needle.__eq__
    elif kind == "prefix":
        test = lambda text: text.startswith(needle)  # noqa: E731
    elif kind == "suffix":
        test = lambda text: text.endswith(needle)  # noqa: E731
    else:
        test = lambda text: needle in text  # noqa: E731

    def literal_match(event_value: object) -> bool:
        text = event_value if isinstance(event_value, str) else as_text(event_value)
        if text is None:
            return False
        return test(text.lower() if fold else text)

    return literal_match


def folded_literals(values: Sequence[SigmaType]) -> frozenset[str] | None:
    """The lower-cased texts when every value is a case-insensitive, wildcard-free, non-empty string; else None."""
    texts: set[str] = set()
    for value in values:
        literal = exact_literal(value)
        if not literal or isinstance(value, SigmaCasedString):
            return None
        texts.add(literal.lower())
    return frozenset(texts)


def _contains_any(needles: list[str]) -> Callable[[str], bool]:
    """Whether a text holds any of the needles; many needles sharing a few beginnings are gated on those first."""
    inside = tuple(needles)
    # `/bin/sh`, `/bin/bash` … `%2fbin%2fsh`: a text holding none of their first four characters holds none of them.
    gate = tuple(sorted({needle[:4] for needle in needles}))

    def plain(text: str) -> bool:
        for needle in inside:  # noqa: SIM110 - a plain loop is about twice as fast as any() here
            if needle in text:
                return True
        return False

    if len(gate) * 2 > len(inside):
        return plain

    def gated(text: str) -> bool:
        for start in gate:
            if start in text:
                return plain(text)
        return False

    return gated


def any_matcher(values: Sequence[SigmaType]) -> Matcher:
    """One predicate for "the value matches any of these": case-folded literals become one set / tuple test each."""
    exact: set[str] = set()
    prefixes: list[str] = []
    suffixes: list[str] = []
    contains: list[str] = []
    numbers: set[int] = set()
    others: list[Matcher] = []
    for value in values:
        if type(value) is SigmaNumber and isinstance(value.number, int):
            numbers.add(value.number)
            continue
        if isinstance(value, SigmaString) and not isinstance(value, SigmaCasedString):
            kind, literal = _shape(value)
            if literal is not None:
                folded = literal.lower()
                if kind == "exact":
                    exact.add(folded)
                else:
                    (prefixes if kind == "prefix" else suffixes if kind == "suffix" else contains).append(folded)
                continue
        others.append(value_matcher(value))
    if not (exact or prefixes or suffixes or contains or numbers) and len(others) == 1:
        return others[0]
    starts, ends, rest = tuple(prefixes), tuple(suffixes), tuple(others)
    inside = _contains_any(contains) if contains else None
    has_literals = bool(exact or starts or ends or contains)
    spelled = {str(number) for number in numbers}

    def match(event_value: object) -> bool:
        if numbers:
            if type(event_value) is int:
                return event_value in numbers or any(other(event_value) for other in rest)
            if isinstance(event_value, str) and event_value.strip() in spelled:
                return True
        if has_literals:
            text = event_value if isinstance(event_value, str) else as_text(event_value)
            if text is not None:
                folded = text.lower()
                if folded in exact:
                    return True
                if starts and folded.startswith(starts):
                    return True
                if ends and folded.endswith(ends):
                    return True
                if inside is not None and inside(folded):
                    return True
        if rest:
            return any(other(event_value) for other in rest)
        return False

    return match


def number_matcher(value: SigmaNumber) -> Matcher:
    """A number equals event numbers of the same value and event strings spelling it."""
    number = value.number
    text = str(number)

    def match(event_value: object) -> bool:
        if isinstance(event_value, bool):
            return False
        if isinstance(event_value, int | float):
            return event_value == number
        return isinstance(event_value, str) and event_value.strip() == text

    return match


def bool_matcher(value: SigmaBool) -> Matcher:
    expected = value.boolean
    spelled = "true" if expected else "false"

    def match(event_value: object) -> bool:
        if isinstance(event_value, bool):
            return event_value is expected
        return isinstance(event_value, str) and event_value.lower() == spelled

    return match


def regex_matcher(value: SigmaRegularExpression) -> Matcher:
    flags = 0
    for flag in value.flags:
        flags |= SigmaRegularExpression.sigma_to_python_flags[flag]
    try:
        compiled = re.compile(value.regexp.to_plain(), flags)
    except re.error as error:
        raise UnsupportedValue(f"invalid regular expression {value.regexp.to_plain()!r}: {error}") from None

    def match(event_value: object) -> bool:
        text = as_text(event_value)
        return text is not None and compiled.search(text) is not None

    return match


def cidr_matcher(value: SigmaCIDRExpression) -> Matcher:
    network = value.network

    def match(event_value: object) -> bool:
        if not isinstance(event_value, str):
            return False
        try:
            return ipaddress.ip_address(event_value.strip()) in network
        except ValueError:
            return False

    return match


def _number(event_value: object) -> float | None:
    if isinstance(event_value, bool):
        return None
    if isinstance(event_value, int | float):
        return float(event_value)
    if isinstance(event_value, str):
        try:
            return float(event_value)
        except ValueError:
            return None
    return None


_COMPARE: dict[CompareOperators, Callable[[float, float], bool]] = {
    CompareOperators.LT: float.__lt__,
    CompareOperators.LTE: float.__le__,
    CompareOperators.GT: float.__gt__,
    CompareOperators.GTE: float.__ge__,
    CompareOperators.NEQ: float.__ne__,
}


def compare_matcher(value: SigmaCompareExpression) -> Matcher:
    bound = float(value.number.number)
    test = _COMPARE[value.op]

    def match(event_value: object) -> bool:
        number = _number(event_value)
        return number is not None and test(number, bound)

    return match


def value_matcher(value: SigmaType) -> Matcher:
    """The predicate one Sigma value applies to each value of its field."""
    if isinstance(value, SigmaString):
        return string_matcher(value)
    if isinstance(value, SigmaTimestampPart):
        raise UnsupportedValue("timestamp-part modifiers (minute, hour, day …) are not supported")
    if isinstance(value, SigmaNumber):
        return number_matcher(value)
    if isinstance(value, SigmaBool):
        return bool_matcher(value)
    if isinstance(value, SigmaRegularExpression):
        return regex_matcher(value)
    if isinstance(value, SigmaCIDRExpression):
        return cidr_matcher(value)
    if isinstance(value, SigmaCompareExpression):
        return compare_matcher(value)
    if isinstance(value, SigmaExpansion):
        matchers = [value_matcher(each) for each in value.values]
        return lambda event_value: any(matcher(event_value) for matcher in matchers)
    raise UnsupportedValue(f"{type(value).__name__} values are not supported in-process")
