"""Turn a compiled condition into one Python function per rule, for speed.

The closures the compiler builds are correct but cost a call per node; here a condition becomes a
single expression over the event (`e`) and the context (`ctx`), with the hottest fields read
inline and every constant (value sets, accessors, fallback predicates) bound by name. No text of a
rule file is ever placed in the generated source: values travel only through the namespace.
"""

from __future__ import annotations

from typing import Any

from kubetrail.detect.operators import Predicate

# Field reads that are plain attribute accesses on the event; each must equal the field's accessor.
INLINE_FIELDS: dict[str, str] = {
    "ka.stage": "e.stage",
    "jevt.value[/stage]": "e.stage",
    "json.value[/stage]": "e.stage",
    "ka.verb": "(e.verb or None)",
    "ka.uri": "e.requestURI",
    "ka.user.name": "(e.user.username or None)",
    "ka.useragent": "(e.userAgent or None)",
    "ka.auditid": "(e.auditID or None)",
    "ka.target.name": "((e.objectRef.name or None) if e.objectRef is not None else None)",
    "ka.target.namespace": "((e.objectRef.namespace or None) if e.objectRef is not None else None)",
    "ka.target.resource": "((e.objectRef.resource or None) if e.objectRef is not None else None)",
    "ka.target.subresource": "((e.objectRef.subresource or None) if e.objectRef is not None else None)",
    "ka.response.code": (
        "(str(e.responseStatus.code) if e.responseStatus is not None and e.responseStatus.code else None)"
    ),
    "jevt.value[/sourceIPs/0]": "(e.sourceIPs[0] if e.sourceIPs else None)",
    "json.value[/sourceIPs/0]": "(e.sourceIPs[0] if e.sourceIPs else None)",
}
INLINE_ANNOTATIONS = {
    "ka.auth.decision": "authorization.k8s.io/decision",
    "ka.auth.reason": "authorization.k8s.io/reason",
}
_ORDERINGS = {"<", "<=", ">", ">="}
_MAX_SOURCE = 200_000


class Namespace:
    """The names generated code refers to: constants, accessors and fallback predicates."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self._ids: dict[int, str] = {}

    def name(self, value: Any) -> str:
        known = self._ids.get(id(value))
        if known is not None:
            return known
        name = f"_n{len(self.values)}"
        self.values[name] = value
        self._ids[id(value)] = name
        return name


def field_source(namespace: Namespace, field_text: str, accessor: Any) -> str:
    """An expression for the value of a field: inline for the hottest ones, else an accessor call."""
    inline = INLINE_FIELDS.get(field_text)
    if inline is not None:
        return inline
    annotation = INLINE_ANNOTATIONS.get(field_text)
    if annotation is not None:
        return f"e.annotations.get({namespace.name(annotation)})"
    return f"{namespace.name(accessor)}(ctx)"


def check_source(
    namespace: Namespace,
    value: str,
    op: str,
    values: list[str],
    *,
    is_list: bool,
    fallback: Predicate,
) -> str:
    """The expression for `field op values` (`value` is the field's expression); the predicate otherwise."""
    if op == "exists":
        return f"({value} is not None)"
    if is_list:
        members = namespace.name(frozenset(values))
        if op == "in":
            return f"((_v := {value}) is not None and {members}.issuperset(_v))"
        if op == "intersects":
            return f"((_v := {value}) is not None and not {members}.isdisjoint(_v))"
        return f"{namespace.name(fallback)}(ctx)"
    if op in ("in", "intersects"):
        return f"({value} in {namespace.name(frozenset(values))})"
    if op in ("=", "=="):
        return f"({value} == {namespace.name(values[0])})"
    if op == "!=" or op in _ORDERINGS:
        compare = "!=" if op == "!=" else op
        return f"((_v := {value}) is not None and _v {compare} {namespace.name(values[0])})"
    if op == "contains":
        return f"((_v := {value}) is not None and {namespace.name(values[0])} in _v)"
    if op in ("startswith", "endswith"):
        return f"((_v := {value}) is not None and _v.{op}({namespace.name(values[0])}))"
    return f"{namespace.name(fallback)}(ctx)"


def build_function(namespace: Namespace, source: str, fallback: Predicate) -> Predicate:
    """Compile `source` into `def f(ctx)`; the closure `fallback` when it is too large to compile."""
    if source == "True":
        return lambda ctx: True
    if len(source) > _MAX_SOURCE:
        return fallback
    text = f"def _rule(ctx):\n    e = ctx.event\n    return bool({source})\n"
    scope = dict(namespace.values)
    try:
        exec(compile(text, "<kubetrail rule>", "exec"), scope)
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return fallback
    function: Predicate = scope["_rule"]
    return function
