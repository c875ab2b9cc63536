"""Turn a compiled condition into one Python function per rule, for speed.

The closures the compiler builds are correct but cost a call per node; here a condition becomes a
single expression over the event (`e`) and the context (`ctx`), with the hottest fields read
inline and every constant (value sets, accessors, fallback predicates) bound by name. No text of a
rule file is ever placed in the generated source: values travel only through the namespace.
"""

from __future__ import annotations

import ast
import re
import weakref
from collections.abc import Callable, Sequence
from types import CodeType
from typing import Any, TypeVar

from kubetrail.detect.facts import agent_product, source_scope
from kubetrail.detect.operators import Predicate

T = TypeVar("T")
IndexKey = tuple[Any, Any, Any, Any]  # (stage, verb, resource, subresource) of the events a bucket sees


def index_key(event: Any) -> IndexKey:
    """The bucket an event falls in: its (stage, verb, resource, subresource), empty values as None."""
    ref = event.objectRef
    if ref is None:
        return (event.stage, event.verb, None, None)
    return (event.stage, event.verb, ref.resource or None, ref.subresource or None)


# Field reads that are plain attribute accesses on the event; each must equal the field's accessor.
INLINE_FIELDS: dict[str, str] = {
    "ka.stage": "e.stage",
    "jevt.value[/stage]": "e.stage",
    "json.value[/stage]": "e.stage",
    "ka.verb": "(e.verb or None)",
    "ka.uri": "e.requestURI",
    "ka.user.name": "(e.user.username or None)",
    "ka.user.groups": "(e.user.groups or None)",
    "ka.impuser.name": ("((e.impersonatedUser.username or None) if e.impersonatedUser is not None else None)"),
    "ka.sourceips": "(e.sourceIPs or None)",
    "ka.useragent": "(e.userAgent or None)",
    "ka.auditid": "(e.auditID or None)",
    "ka.target.name": "((e.objectRef.name or None) if e.objectRef is not None else None)",
    "ka.target.namespace": "((e.objectRef.namespace or None) if e.objectRef is not None else None)",
    "ka.target.resource": "((e.objectRef.resource or None) if e.objectRef is not None else None)",
    "ka.target.subresource": "((e.objectRef.subresource or None) if e.objectRef is not None else None)",
    "ka.response.code": (
        "(str(e.responseStatus.code) if e.responseStatus is not None and e.responseStatus.code else None)"
    ),
    # kubetrail.detect.facts.outcome_label, spelled out so that rules testing the outcome cost no call
    "ka.outcome": (
        "(('failed' if e.stage == 'Panic' else None if e.responseStatus is None or not e.responseStatus.code"
        " else 'succeeded' if e.responseStatus.code < 400"
        " else 'denied' if e.responseStatus.code in (401, 403) else 'failed'))"
    ),
    "jevt.value[/sourceIPs/0]": "(e.sourceIPs[0] if e.sourceIPs else None)",
    "json.value[/sourceIPs/0]": "(e.sourceIPs[0] if e.sourceIPs else None)",
}
# Fields computed by a plain function of one event attribute: called directly, without the accessor's layers.
INLINE_CALLS: dict[str, tuple[Callable[[str], str | None], str]] = {
    "ka.source.scope": (source_scope, "({f}(e.sourceIPs[0]) if e.sourceIPs else None)"),
    "ka.useragent.product": (agent_product, "({f}(e.userAgent) if e.userAgent else None)"),
}
# The response code as the integer the event holds (0 is "no code", as for the string form).
RESPONSE_CODE_INT = "(e.responseStatus.code if e.responseStatus is not None else None)"
_LIST_INLINE = {"ka.user.groups", "ka.sourceips"}
INLINE_ANNOTATIONS = {
    "ka.auth.decision": "authorization.k8s.io/decision",
    "ka.auth.reason": "authorization.k8s.io/reason",
}
_ORDERINGS = {"<", "<=", ">", ">="}
_MAX_SOURCE = 200_000
# Inline reads worth computing once per event when several rules of one bucket use them (longest first, so
# that an expression containing another is replaced whole).
_HOISTABLE = sorted(
    {text for text in (*INLINE_FIELDS.values(), RESPONSE_CODE_INT) if text.startswith("(")}, key=len, reverse=True
)
# The source and names of each generated function, so that a bucket's functions can be fused into one.
_GENERATED: weakref.WeakKeyDictionary[Callable[..., Any], tuple[str, dict[str, Any]]] = weakref.WeakKeyDictionary()


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
    call = INLINE_CALLS.get(field_text)
    if call is not None:
        function, template = call
        return template.format(f=namespace.name(function))
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
    if value == INLINE_FIELDS["ka.response.code"] and op in ("=", "==", "in", "intersects"):
        codes = _integer_codes(values)
        if codes is not None:  # the same test on the integer, without formatting it
            return f"({RESPONSE_CODE_INT} in {namespace.name(codes)})"
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


def mergeable_test(
    value: str, op: str, values: list[str], *, is_list: bool
) -> tuple[str, str, tuple[object, ...]] | None:
    """What `check_source` tests, when tests of one value against constants can merge in an OR: ("prefix",
    value, prefixes) for `startswith`, ("member", value, members) for `=` and `in`; None otherwise."""
    if is_list or not values:
        return None
    if op == "startswith":
        return ("prefix", value, (values[0],))
    if op not in ("=", "==", "in", "intersects"):
        return None
    if value == INLINE_FIELDS["ka.response.code"]:
        codes = _integer_codes(values)
        if codes is not None:
            return ("member", RESPONSE_CODE_INT, tuple(codes))
    return ("member", value, tuple(values) if op in ("in", "intersects") else (values[0],))


def _integer_codes(values: list[str]) -> frozenset[int] | None:
    """The codes `values` name when each is written as Go formats an integer; None when one is not."""
    codes: set[int] = set()
    for value in values:
        if not value.isascii() or not value.isdigit() or (value.startswith("0") and value != "0"):
            return None
        if value != "0":  # a zero code reads as missing, which equals nothing
            codes.add(int(value))
    return frozenset(codes)


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
    _GENERATED[function] = (source, namespace.values)
    return function


def build_key_function(fields: Sequence[str]) -> Callable[[Any], tuple[object, ...]] | None:
    """`ctx -> (value, ...)` of fields that are all read inline (lists as tuples); None when one is not."""
    parts: list[str] = []
    scope: dict[str, Any] = {"_tuple_or_none": _tuple_or_none}
    for index, name in enumerate(fields):
        inline = INLINE_FIELDS.get(name)
        call = INLINE_CALLS.get(name)
        if call is not None:
            compute, template = call
            scope[f"_c{index}"] = compute
            inline = template.format(f=f"_c{index}")
        if inline is None:
            return None
        parts.append(f"_tuple_or_none({inline})" if name in _LIST_INLINE else inline)
    text = f"def _key(ctx):\n    e = ctx.event\n    return ({', '.join(parts)},)\n"
    exec(compile(text, "<kubetrail key>", "exec"), scope)
    function: Callable[[Any], tuple[object, ...]] = scope["_key"]
    return function


def _tuple_or_none(values: list[str] | None) -> tuple[str, ...] | None:
    return tuple(values) if values is not None else None


def fuse(
    predicates: Sequence[tuple[Predicate, T]], *, first: bool = False, key: IndexKey | None = None
) -> Callable[[Any], list[T]]:
    """One function testing every predicate on an event: it returns the items whose predicate holds, in order
    (only the first such item when `first`).

    Equivalent to `[item for predicate, item in predicates if predicate(ctx)]` (and to its first element),
    with one call per event instead of one per predicate; see `fuse_groups`.
    """
    function = _generate([predicates], exclusive=first, single=True, key=key)
    if function is None:
        return _unfused(predicates, first)
    return function  # type: ignore[no-any-return]


def fuse_groups(
    groups: Sequence[Sequence[tuple[Predicate, Any]]], *, first_exclusive: bool = False, key: IndexKey | None = None
) -> Callable[[Any], tuple[list[Any] | None, ...]]:
    """Like `fuse` over several groups at once: a tuple with, per group, the items whose predicate holds (None
    when there are none).

    With `first_exclusive`, the first group yields at most its first match (Falco's `first` matching) while
    the other groups are still tested in full. Generated predicates of one namespace are inlined, and the event
    fields several of them read are read once; any other predicate is called. With `key`, the function only sees
    events with these (stage, verb, resource, subresource) values (the engine's bucket), so it reads them from
    the key instead of the event.
    """
    function = _generate(groups, exclusive=first_exclusive, single=False, key=key)
    if function is None:
        unfused = [_unfused(group, first_exclusive and index == 0) for index, group in enumerate(groups)]
        return lambda ctx: tuple(select(ctx) or None for select in unfused)
    return function  # type: ignore[no-any-return]


def _generate(
    groups: Sequence[Sequence[tuple[Predicate, Any]]], *, exclusive: bool, single: bool, key: IndexKey | None
) -> Any:
    """The source of the fused function, compiled; None when it cannot be (too large)."""
    scope: dict[str, Any] = {}
    shared: dict[str, Any] | None = None
    tests: list[str] = []
    owners: list[tuple[int, int]] = []  # (group, item name index) per test
    for group_index, group in enumerate(groups):
        for predicate, item in group:
            index = len(tests)
            scope[f"_i{index}"] = item
            owners.append((group_index, index))
            generated = _GENERATED.get(predicate)
            if generated is not None and (shared is None or generated[1] is shared):
                shared = generated[1]
                tests.append(generated[0])
            else:
                scope[f"_p{index}"] = predicate
                tests.append(f"_p{index}(ctx)")
    known: dict[str, Any] | None = None
    if key is not None:
        _use_key(tests, key, scope)
        known = {**(shared or {}), **scope}
    shape = (tuple(tests), tuple(group for group, _ in owners), len(groups), exclusive, single, key)
    # compiled code depends on the constants' values (folding): one cache per namespace of constants
    cache: dict[tuple[object, ...], Any] = _CODE if shared is None else shared.setdefault(_CODE_CACHE, {})
    compiled = cache.get(shape, _MISSING)
    if compiled is _MISSING:
        if len(cache) >= _CODE_LIMIT:
            cache.clear()
        compiled = cache[shape] = _compile_fused(
            tests, owners, len(groups), exclusive=exclusive, single=single, known=known
        )
    if compiled is None:
        return None
    code, memos = compiled
    namespace = dict(shared or {})
    namespace.update(scope)
    for name in memos:  # `_m_nK`: the prefix test against the tuple `_nK`, remembered per value
        namespace[f"_m{name}"] = _prefix_memo(namespace[name])
    exec(code, namespace)
    return namespace["_fused"]


def _use_key(tests: list[str], key: IndexKey, scope: dict[str, Any]) -> None:
    """Replace, in place, the reads of the bucket's index fields by names bound to the key's values."""
    stage, verb, resource, subresource = key
    known = {
        INLINE_FIELDS["ka.verb"]: verb or None,
        INLINE_FIELDS["ka.target.resource"]: resource,
        INLINE_FIELDS["ka.target.subresource"]: subresource,
    }
    for index, (expression, value) in enumerate(known.items()):
        scope[f"_k{index}"] = value
        for position, test in enumerate(tests):
            tests[position] = test.replace(expression, f"_k{index}")
    scope["_k_stage"] = stage
    for position, test in enumerate(tests):
        tests[position] = _STAGE_READ.sub("_k_stage", test)


def _fold(tests: list[str], names: dict[str, Any]) -> None:
    """Replace, in place, each part of a test that depends only on the bucket's key and constants by its value,
    and simplify: a test that is false for every event of the bucket becomes `False`."""
    folder = _Folder(names)
    for position, test in enumerate(tests):
        if "_k" not in test:
            continue  # reads nothing the key decides
        try:
            tree = ast.parse(test, mode="eval")
        except (SyntaxError, RecursionError, MemoryError, ValueError):
            continue
        folded = folder.visit(tree)
        tests[position] = ast.unparse(folded.body) if isinstance(folded, ast.Expression) else test


class _Folder(ast.NodeTransformer):
    """Evaluates subexpressions over known names (`_k*`: the key; `_n*`: constants) and simplifies and/or/not."""

    def __init__(self, names: dict[str, Any]) -> None:
        self.names = names
        self._scope = dict(names)  # what folded expressions are evaluated in (eval may add __builtins__)

    def _known(self, node: ast.AST) -> bool:
        for child in ast.walk(node):
            if isinstance(child, (ast.Call, ast.NamedExpr, ast.Attribute, ast.Subscript)):
                return False
            if isinstance(child, ast.Name) and not (child.id.startswith(("_k", "_n")) and child.id in self.names):
                return False
        return True

    def _value(self, node: ast.expr) -> ast.expr:
        if isinstance(node, (ast.Compare, ast.UnaryOp, ast.BoolOp)) and self._known(node):
            try:
                value = eval(compile(ast.Expression(node), "<fold>", "eval"), self._scope)
            except Exception:
                return node
            if isinstance(value, bool):
                return ast.copy_location(ast.Constant(value), node)
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        self.generic_visit(node)
        stop = isinstance(node.op, ast.Or)  # `or`: a true operand decides; `and`: a false one
        kept: list[ast.expr] = []
        for operand in node.values:
            if isinstance(operand, ast.Constant) and isinstance(operand.value, bool):
                if operand.value is stop:
                    return ast.copy_location(ast.Constant(stop), node)
                continue
            kept.append(operand)
        if not kept:
            return ast.copy_location(ast.Constant(not stop), node)
        if len(kept) == 1:
            return kept[0]
        node.values = kept
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not) and isinstance(node.operand, ast.Constant):
            return ast.copy_location(ast.Constant(not node.operand.value), node)
        return self._value(node)

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        return self._value(node)


def _compile_fused(
    tests: list[str],
    owners: list[tuple[int, int]],
    groups: int,
    *,
    exclusive: bool,
    single: bool,
    known: dict[str, Any] | None,
) -> tuple[CodeType, tuple[str, ...]] | None:
    """The fused function's code (the same for every engine with the same rules: workers run one per partition),
    and the prefix tuples whose tests it remembers per value. `known`: the names whose values are fixed (the
    bucket's key and the constants), to fold what depends on them alone."""
    tests = list(tests)
    lines = ["def _fused(ctx):", "    e = ctx.event", *_hoist(tests)]
    if known is not None:
        _fold(tests, known)
    memos = _remember_prefix_tests(tests)
    # most events match nothing: a group's list is only made when something matches (None until then)
    lines += [f"    m{group_index} = None" for group_index in range(groups)]
    chained = False
    for test, (group_index, index) in zip(tests, owners, strict=True):
        if test == "False":  # cannot match any event of this bucket
            continue
        chained = exclusive and group_index == 0 and chained
        found = f"m{group_index}"
        add = (
            f"if {found} is None:\n            {found} = [_i{index}]\n"
            f"        else:\n            {found}.append(_i{index})"
        )
        lines.append(f"    {'elif' if chained else 'if'} {test}:\n        {add}")
        chained = exclusive and group_index == 0
    lines.append(
        "    return m0 if m0 is not None else []"
        if single
        else f"    return ({', '.join(f'm{i}' for i in range(groups))},)"
    )
    text = "\n".join(lines) + "\n"
    if len(text) > _MAX_SOURCE * 4:
        return None
    try:
        return compile(text, "<kubetrail rules>", "exec"), memos
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return None


def _remember_prefix_tests(tests: list[str]) -> tuple[str, ...]:
    """Replace, in place, prefix tests on the hoisted reads of low-cardinality fields (user names, user agents)
    by a lookup in a table of results per value; the names of the prefix tuples concerned."""
    names: set[str] = set()

    def replace(found: re.Match[str]) -> str:
        names.add(found.group(2))
        return f"_m{found.group(2)}[{found.group(1)}]"

    for position, test in enumerate(tests):
        tests[position] = _PREFIX_TEST.sub(replace, test)
    return tuple(sorted(names))


class _PrefixMemo(dict[str | None, bool]):
    """Whether a value starts with one of the prefixes, remembered per value (up to `_MEMO_LIMIT` values)."""

    def __init__(self, prefixes: tuple[str, ...] | str) -> None:
        super().__init__()
        self.prefixes = prefixes

    def __missing__(self, value: str | None) -> bool:
        result = value is not None and value.startswith(self.prefixes)
        if len(self) < _MEMO_LIMIT:
            self[value] = result
        return result


def _prefix_memo(prefixes: tuple[str, ...] | str) -> _PrefixMemo:
    key = prefixes if isinstance(prefixes, tuple) else (prefixes,)
    memo = _MEMOS.get(key)
    if memo is None:
        memo = _MEMOS[key] = _PrefixMemo(prefixes)
    return memo


def _hoist(tests: list[str]) -> list[str]:
    """Replace, in place, each inline field read used more than once by a local computed at the start."""
    assignments: list[str] = []
    for index, expression in enumerate(_HOISTABLE):
        # in a bucket the stage comes from the key (`_use_key`): the same read then says `_k_stage`
        for form in dict.fromkeys((expression, _STAGE_READ.sub("_k_stage", expression))):
            if sum(test.count(form) for test in tests) < 2:
                continue
            local = f"_f{index}"
            for position, test in enumerate(tests):
                tests[position] = test.replace(form, local)
            assignments.append(f"    {local} = {form}")
            break
    return assignments


_MISSING: Any = object()
_STAGE_READ = re.compile(r"\be\.stage\b")
# Hoisted reads whose values repeat a lot (who, with which client): their prefix tests are remembered per value.
_LOW_CARDINALITY = tuple(
    f"_f{_HOISTABLE.index(INLINE_FIELDS[name])}" for name in ("ka.user.name", "ka.impuser.name", "ka.useragent")
)
_PREFIX_TEST = re.compile(
    r"\(_v := (" + "|".join(_LOW_CARDINALITY) + r")\) is not None and _v\.startswith\((_n\d+)\)(?![.\w(])"
)
_CODE: dict[tuple[object, ...], tuple[CodeType, tuple[str, ...]] | None] = {}
_CODE_CACHE = "_kubetrail_code"  # a namespace's own cache of compiled code, kept among its names
_MEMOS: dict[tuple[str, ...], _PrefixMemo] = {}
_MEMO_LIMIT = 65_536
_CODE_LIMIT = 4096


def _unfused(predicates: Sequence[tuple[Predicate, T]], first: bool) -> Callable[[Any], list[T]]:
    pairs = tuple(predicates)
    if first:

        def first_match(ctx: Any) -> list[T]:
            for predicate, item in pairs:
                if predicate(ctx):
                    return [item]
            return []

        return first_match
    return lambda ctx: [item for predicate, item in pairs if predicate(ctx)]
