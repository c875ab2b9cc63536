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
        if shared is not None:
            for cache_name in (_FOLD_CACHE, _VALUE_NAMES, _VALUE_TESTS):
                shared.setdefault(cache_name, {})
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
    code, memos, values = compiled
    namespace = dict(shared or {})
    namespace.update(scope)
    for name in memos:  # `_m_nK`: the prefix test against the tuple `_nK`, remembered per value
        namespace[f"_m{name}"] = _prefix_memo(namespace[name])
    if values:
        assert shared is not None  # conditions are only remembered over a rule set's own constants
        remembered = shared.setdefault(_VALUE_CACHE, {})
        for local, source in values:  # `_uK`: a condition on one user name or agent, remembered per value
            memo = remembered.get(source)
            if memo is None:
                memo = remembered[source] = _ValueMemo(eval(source, namespace))
            namespace[local] = memo
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


def _fold(tests: list[str], names: dict[str, Any], cache: dict[tuple[object, ...], str] | None = None) -> None:
    """Replace, in place, each part of a test that depends only on the bucket's key and constants by its value,
    and simplify: a test that is false for every event of the bucket becomes `False`.

    A rule's test reads the same key names in every bucket, so its folded form depends only on the values of
    the key names it reads: `cache` (kept with the rule set's constants) remembers it per such values.
    """
    folder: _Folder | None = None
    for position, test in enumerate(tests):
        if "_k" not in test:
            continue  # reads nothing the key decides
        memo_key: tuple[object, ...] | None = None
        if cache is not None:
            memo_key = (test, *(names.get(name, _MISSING) for name in sorted(set(_KEY_NAME.findall(test)))))
            known = cache.get(memo_key)
            if known is not None:
                tests[position] = known
                continue
        quick = _fold_key_tests(test, names)
        if quick is not None:
            tests[position] = quick
            if cache is not None and memo_key is not None:
                cache[memo_key] = quick
            continue
        try:
            tree = ast.parse(test, mode="eval")
        except (SyntaxError, RecursionError, MemoryError, ValueError):
            continue
        folder = folder or _Folder(names)
        folded = folder.visit(tree)
        tests[position] = ast.unparse(folded.body) if isinstance(folded, ast.Expression) else test
        if cache is not None and memo_key is not None:
            if len(cache) >= _FOLD_LIMIT:
                cache.clear()
            cache[memo_key] = tests[position]


_KEY_NAME = re.compile(r"\b_k(?:\d+|_stage)\b")
# The key tests the compiler writes: `(_k1 == _n5)`, `(_k0 in _n7)`, `(_k2 is not None)`.
_KEY_TEST = re.compile(r"\((_k(?:\d+|_stage)) (?:(==|in) (_n\d+)|is not None)\)")


def _fold_key_tests(test: str, names: dict[str, Any]) -> str | None:
    """The test with its key tests decided, without parsing it: None when the key is read some other way.

    A top-level conjunct that is false makes the whole test `False` (the bucket's events can never match);
    true top-level conjuncts are dropped; the compiler skips the constants left deeper inside.
    """

    def decide(found: re.Match[str]) -> str:
        value = names.get(found.group(1), _MISSING)
        if found.group(2) is None:
            return str(value is not None)
        constant = names.get(found.group(3), _MISSING)
        if value is _MISSING or constant is _MISSING:
            return found.group(0)
        return str(value == constant if found.group(2) == "==" else value in constant)

    text = _KEY_TEST.sub(decide, test)
    if "_k" in text:
        return None
    conjuncts = _top_level_and(text)
    if any(part in ("False", "(False)") for part in conjuncts):
        return "False"
    kept = [part for part in conjuncts if part not in ("True", "(True)")]
    return " and ".join(kept) if kept else "True"


def _top_level_and(text: str) -> list[str]:
    """The operands of the test's outermost `and`; the whole test when its outermost operator is another
    (`or` and `... if ... else ...` bind more loosely than `and`)."""
    cuts: list[int] = []
    depth = 0
    for index, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and char == " ":
            if text.startswith(" and ", index):
                cuts.append(index)
            elif text.startswith((" or ", " if ", " else "), index):
                return [text.strip()]
    parts = []
    start = 0
    for cut in cuts:
        parts.append(text[start:cut].strip())
        start = cut + 5
    parts.append(text[start:].strip())
    return parts


_FOLD_LIMIT = 65_536
_FOLD_CACHE = "_kubetrail_folds"  # a namespace's folded tests, kept among its names


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
) -> tuple[CodeType, tuple[str, ...], tuple[tuple[str, str], ...]] | None:
    """The fused function's code (the same for every engine with the same rules: workers run one per partition),
    the prefix tuples whose tests it remembers per value, and the conditions it remembers per value (local name,
    `lambda` source). `known`: the names whose values are fixed (the
    bucket's key and the constants), to fold what depends on them alone."""
    tests = list(tests)
    lines = ["def _fused(ctx):", "    e = ctx.event", *_hoist(tests)]
    if known is not None:
        _fold(tests, known, known.get(_FOLD_CACHE))
    memos = _remember_prefix_tests(tests)
    values: tuple[tuple[str, str], ...] = ()
    if known is not None and _VALUE_NAMES in known:
        values = _remember_value_tests(tests, known[_VALUE_NAMES], known[_VALUE_TESTS])
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
        return compile(text, "<kubetrail rules>", "exec"), memos, values
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


def _remember_value_tests(
    tests: list[str], names: dict[str, str], done: dict[str, tuple[str, tuple[str, ...]]]
) -> tuple[tuple[str, str], ...]:
    """Replace, in place, each largest sub-condition that reads only one low-cardinality value (the user name,
    the impersonated user, the user agent) and constants by a lookup in a table of results per value
    (`not kt_system_component`, `kt_human` ... are then decided once per user, not once per rule and event);
    the tables' local names and the `lambda` each is computed with.

    `names` gives each `lambda` source its local name and `done` each test its rewritten form, for the whole
    rule set: a rule's test is the same in most buckets.
    """
    used: dict[str, str] = {}
    for position, test in enumerate(tests):
        known = done.get(test)
        if known is None:
            known = _rewrite_value_tests(test, names)
            if len(done) >= _FOLD_LIMIT:
                done.clear()
            done[test] = known
        tests[position], sources = known
        for source in sources:
            used[names[source]] = source
    return tuple(used.items())


def _rewrite_value_tests(test: str, names: dict[str, str]) -> tuple[str, tuple[str, ...]]:
    if not any(name in test for name in _LOW_CARDINALITY):
        return test, ()
    try:
        tree = ast.parse(test, mode="eval")
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return test, ()
    sources: list[str] = []
    replaced = _replace_value_tests(tree.body, names, sources)
    return (ast.unparse(replaced), tuple(sources)) if sources else (test, ())


def _replace_value_tests(node: ast.expr, names: dict[str, str], sources: list[str]) -> ast.expr:
    variable = _single_value(node)
    if variable is not None and isinstance(node, (ast.BoolOp, ast.UnaryOp)):
        body = _Rename(variable).visit(ast.parse(ast.unparse(node), mode="eval").body)
        source = f"lambda _x: ({ast.unparse(body)})"
        local = names.setdefault(source, f"_u{len(names)}")
        sources.append(source)
        return ast.Subscript(ast.Name(local, ast.Load()), ast.Name(variable, ast.Load()), ast.Load())
    for field, value in ast.iter_fields(node):
        if isinstance(value, ast.expr):
            setattr(node, field, _replace_value_tests(value, names, sources))
        elif isinstance(value, list):
            items = [
                _replace_value_tests(item, names, sources) if isinstance(item, ast.expr) else item for item in value
            ]
            setattr(node, field, items)
    return node


def _single_value(node: ast.expr) -> str | None:
    """The one low-cardinality local the condition reads, when it reads nothing else but constants."""
    variables: set[str] = set()
    assigned: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            name = child.id
            if isinstance(child.ctx, ast.Store):
                assigned.add(name)
            elif name in _LOW_CARDINALITY:
                variables.add(name)
            elif not (name.startswith(("_n", "_m_n")) or name in assigned or name == "_v"):
                return None
        elif isinstance(child, (ast.Call, ast.Lambda, ast.Await, ast.Yield, ast.Starred)) and not (
            isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
        ):
            return None  # calls of constants' methods (`_v.startswith(_n3)`) are pure; others may not be
    if len(variables) != 1 or not assigned <= {"_v"}:
        return None
    return variables.pop()


class _Rename(ast.NodeTransformer):
    def __init__(self, variable: str) -> None:
        self.variable = variable

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.Name("_x", node.ctx) if node.id == self.variable else node


class _ValueMemo(dict[object, bool]):
    """A condition of one value, remembered per value (up to `_MEMO_LIMIT` values)."""

    def __init__(self, compute: Callable[[object], bool]) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, value: object) -> bool:
        result = bool(self.compute(value))
        if len(self) < _MEMO_LIMIT:
            self[value] = result
        return result


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
_VALUE_CACHE = "_kubetrail_values"  # a namespace's conditions remembered per value, by their `lambda` source
_VALUE_NAMES = "_kubetrail_value_names"  # their local names, by `lambda` source
_VALUE_TESTS = "_kubetrail_value_tests"  # tests as rewritten to use them
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
