"""Comparison operators as predicates over field values, with libsinsp's semantics.

A field that is not available (None) makes every comparison false, `!=` included; only `exists`
looks at availability. List fields support `exists`, `in` (every value is in the set) and
`intersects` (some value is). Strings compare as C strings do (`<` is strcmp order).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable

from kubetrail.detect.context import EventContext
from kubetrail.detect.fields import Accessor

Predicate = Callable[[EventContext], bool]

LIST_FIELD_OPERATORS = frozenset({"exists", "in", "intersects"})
SET_OPERATORS = frozenset({"in", "intersects", "pmatch"})


class OperatorError(ValueError):
    """An operator that cannot apply to a field or value (reported with the check's position)."""


def _path_parts(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part)


def _pmatch(prefixes: list[str]) -> Callable[[str], bool]:
    """Path-prefix match by whole components: `/etc` matches `/etc` and `/etc/x`, not `/etcd`."""
    parts = [_path_parts(prefix) for prefix in prefixes]

    def match(value: str) -> bool:
        components = _path_parts(value)
        return any(components[: len(prefix)] == prefix for prefix in parts)

    return match


def _string_test(op: str, rhs: str) -> Callable[[str], bool]:
    """The test applied to an available string value."""
    if op in ("=", "=="):
        return rhs.__eq__
    if op == "!=":
        return rhs.__ne__
    if op == "<":
        return lambda value: value < rhs
    if op == "<=":
        return lambda value: value <= rhs
    if op == ">":
        return lambda value: value > rhs
    if op == ">=":
        return lambda value: value >= rhs
    if op == "contains":
        return lambda value: rhs in value
    if op == "icontains":
        folded = rhs.lower()
        return lambda value: folded in value.lower()
    if op == "startswith":
        return lambda value: value.startswith(rhs)
    if op == "endswith":
        return lambda value: value.endswith(rhs)
    if op in ("glob", "iglob"):
        flags = re.IGNORECASE if op == "iglob" else 0
        pattern = re.compile(fnmatch.translate(rhs), flags)
        return lambda value: pattern.match(value) is not None
    if op == "regex":
        try:
            compiled = re.compile(rhs)
        except re.error as error:
            raise OperatorError(f"invalid regex pattern: {error}") from None
        return lambda value: compiled.fullmatch(value) is not None
    if op in ("bcontains", "bstartswith"):
        raise OperatorError(f"operator '{op}' applies to byte buffers, and this field is a string")
    raise OperatorError(f"unknown operator '{op}'")


def build_predicate(get: Accessor, is_list: bool, op: str, values: list[str]) -> Predicate:
    """The predicate `field op values` for a field accessor (values: one item, or the set's items)."""
    if op == "exists":
        return lambda ctx: get(ctx) is not None
    if is_list:
        if op not in LIST_FIELD_OPERATORS:
            raise OperatorError(f"list fields only support the operators 'exists', 'in' and 'intersects', not '{op}'")
        members = frozenset(values)
        if op == "in":

            def every_in(ctx: EventContext) -> bool:
                found = get(ctx)
                if found is None:
                    return False
                return all(value in members for value in found)

            return every_in

        def any_in(ctx: EventContext) -> bool:
            found = get(ctx)
            return found is not None and not members.isdisjoint(found)

        return any_in
    if op in ("in", "intersects"):
        members = frozenset(values)

        def member(ctx: EventContext) -> bool:
            return get(ctx) in members

        return member
    if op == "pmatch":
        matches = _pmatch(values)

        def path_match(ctx: EventContext) -> bool:
            found = get(ctx)
            return isinstance(found, str) and matches(found)

        return path_match
    rhs = values[0] if values else ""
    if op in ("=", "=="):

        def equal(ctx: EventContext) -> bool:
            return get(ctx) == rhs

        return equal
    test = _string_test(op, rhs)

    def compare(ctx: EventContext) -> bool:
        found = get(ctx)
        return isinstance(found, str) and test(found)

    return compare
