"""Compile collected rules into predicates, once per rule set: lists expanded, macros inlined, fields bound.

Macros are resolved with Falco's visibility (a macro sees only macros defined before its latest
definition; rules see all), lists are expanded where a bare value names one, and a rule's
exceptions become `and not (...)` clauses exactly as Falco writes them. Every check becomes a
closure over a shared field accessor; AND/OR operands are ordered cheapest first (evaluation has no
side effects, so the result cannot change). Each rule also yields the values of stage, verb and
resource it requires, which the engine uses to try a rule only on events that can match it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kubetrail.detect.codegen import Namespace, build_function, check_source, field_source, mergeable_test
from kubetrail.detect.collector import (
    Collector,
    ConditionText,
    Entry,
    ExceptionInfo,
    MacroInfo,
    Notice,
    RuleInfo,
    Where,
)
from kubetrail.detect.errors import ConditionSyntaxError, RuleCompileError
from kubetrail.detect.fields import FIELDS, Accessor, accessor_for, rawtime_equals
from kubetrail.detect.nodes import LIST_OPERATORS, And, Check, Expr, Item, MacroRef, Not, Or
from kubetrail.detect.operators import OperatorError, Predicate, build_predicate
from kubetrail.detect.output import OutputFormat, OutputFormatError, TimeFormat, compile_output
from kubetrail.detect.parser import ParseError, parse_condition
from kubetrail.detect.priority import Priority
from kubetrail.detect.stateful import DEFAULT_MAX_KEYS, SpecError, StatefulDetector, StatefulSpec
from kubetrail.detect.stateful.build import RuleParts, build_spec

# Index keys: the event properties the engine buckets rules by, and the fields that name them.
INDEX_FIELDS = {"jevt.value[/stage]": "stage", "json.value[/stage]": "stage", "ka.stage": "stage"}
INDEX_FIELDS |= {"ka.verb": "verb", "ka.target.resource": "resource", "ka.target.subresource": "subresource"}
INDEX_KEYS = ("stage", "verb", "resource", "subresource")
RAWTIME_FIELDS = ("jevt.rawtime", "json.rawtime")
_CHEAP_SOURCES: tuple[str, ...] = ("auditID", "stage", "annotations", "user", "impersonatedUser", "verb")
_CHEAP_SOURCES += ("requestURI", "objectRef", "responseStatus", "userAgent", "sourceIPs", "(receiver")

Constraints = dict[str, frozenset[str]]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule ready to evaluate: its predicate, output template and the index values it requires.

    `residual` is the predicate less the checks the index decides: it is only valid for events
    the rule `admits`.
    """

    name: str
    priority: Priority
    source: str
    desc: str
    tags: tuple[str, ...]
    enabled: bool
    output: OutputFormat
    predicate: Predicate
    constraints: Constraints
    position: int
    residual: Predicate
    never: bool = False  # the condition is false for every event (e.g. disabled through a macro)
    mitre: tuple[str, ...] = ()
    threat_matrix: tuple[str, ...] = ()

    def admits(self, key: tuple[object, ...]) -> bool:
        """Whether an event with these (stage, verb, resource, subresource) values can match the rule."""
        return admits(self.constraints, key)


def admits(constraints: Constraints, key: tuple[object, ...]) -> bool:
    """Whether (stage, verb, resource, subresource) values meet the index constraints."""
    for name, value in zip(INDEX_KEYS, key, strict=True):
        allowed = constraints.get(name)
        if allowed is not None and value not in allowed:
            return False
    return True


@dataclass
class RuleSet:
    """Every compiled k8s_audit rule in rule-file order, and the notices of loading."""

    rules: list[CompiledRule]
    notices: list[Notice] = field(default_factory=list)
    stateful: list[StatefulSpec] = field(default_factory=list)  # enabled stateful rules, run by a StatefulDetector

    @property
    def enabled(self) -> list[CompiledRule]:
        return [rule for rule in self.rules if rule.enabled]

    def detectors(
        self,
        min_priority: Priority = Priority.DEBUG,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        hostname: str = "",
        time_format: TimeFormat = TimeFormat.ISO8601,
        running: Iterable[object] = (),
    ) -> list[StatefulDetector]:
        """A fresh detector for the stateful rules at or above `min_priority` (none when there are none).

        Rules that a StatefulDetector in `running` already runs are left out, so none runs twice.
        """
        taken = [spec for detector in running if isinstance(detector, StatefulDetector) for spec in detector.specs]
        specs = [spec for spec in self.stateful if spec.priority.at_least(min_priority) and spec not in taken]
        if not specs:
            return []
        return [StatefulDetector(specs, max_keys=max_keys, hostname=hostname, time_format=time_format)]


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A compiled (sub)condition: its predicate, cost, the index values it requires.

    `terms` are the conjuncts of a (flattened) AND, or the node itself; `constant` is set when
    the value is known without an event; `index_only` marks a check that the index decides alone.
    """

    predicate: Predicate
    cost: int
    constraints: Constraints
    source: str
    terms: tuple[_Compiled, ...] = ()
    constant: bool | None = None
    index_only: bool = False
    alternatives: tuple[_Compiled, ...] = ()  # the operands of a (flattened) OR
    negation_of: _Compiled | None = None  # the operand of a NOT
    # A test that merges with its like in an OR: ("prefix"|"member", value expression, the values).
    mergeable: tuple[str, str, tuple[object, ...]] | None = None

    @property
    def conjuncts(self) -> tuple[_Compiled, ...]:
        return self.terms or (self,)


def _negation(inner: _Compiled) -> _Compiled:
    child = inner.predicate
    return _Compiled(lambda ctx: not child(ctx), inner.cost, {}, f"(not {inner.source})", negation_of=inner)


def _constant(value: bool) -> _Compiled:
    return _Compiled((lambda ctx: True) if value else (lambda ctx: False), 0, {}, str(value), constant=value)


@dataclass(frozen=True, slots=True)
class _Owner:
    """Whose condition is being compiled: for error positions and for macro visibility."""

    label: str
    condition: ConditionText
    where: Where
    visibility: int | None  # None: sees every macro (rules)

    def locate(self, offset: int) -> Where:
        return self.condition.locate(offset, self.where)


def _quote_item(text: str) -> str:
    if " " in text and not text.startswith(('"', "'")):
        return f'"{text}"'
    return text


def exception_condition(condition: str, exceptions: list[ExceptionInfo], where: Where) -> str:
    """The rule's condition with its exceptions, written out as Falco's rule compiler writes them."""
    text = f"({condition})"
    for exception in exceptions:
        fields = exception.fields
        comps = exception.comps
        assert fields is not None and comps is not None
        clause = ""
        if not fields.is_list:
            values: list[str] = []
            for value in exception.values:
                if value.is_list:
                    raise where.error("Expected values array to contain a list of strings", item=exception.name)
                values.append(_quote_item(value.item))
            if values:
                clause = f"({fields.item} {comps.item} ({', '.join(values)}))"
        else:
            assert fields.items is not None and comps.items is not None
            alternatives: list[str] = []
            for value in exception.values:
                items = value.items if value.items is not None else [value]
                if len(items) != len(fields.items):
                    raise where.error("Fields and values lists must have equal length", item=exception.name)
                terms: list[str] = []
                for field_entry, comp, item in zip(fields.items, comps.items, items, strict=True):
                    terms.append(f"{field_entry.item} {comp.item} {_render_value(item, comp.item)}")
                alternatives.append("(" + " and ".join(terms) + ")")
            if alternatives:
                clause = "(" + " or ".join(alternatives) + ")"
        if clause:
            text += f" and not {clause}"
    return text


def _render_value(item: Entry, comp: str) -> str:
    if item.items is not None:
        return "(" + ", ".join(_quote_item(sub.item) for sub in item.items) + ")"
    if comp in LIST_OPERATORS:
        return item.item if item.item.startswith("(") else f"({item.item})"
    return _quote_item(item.item)


class _Compiler:
    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.lists = self._compile_lists()
        self.macro_ast: dict[str, Expr] = {}
        self.macro_done: dict[str, _Compiled] = {}
        self.macro_busy: set[str] = set()
        self.accessors: dict[tuple[str, str | None], Accessor] = {}
        self.namespace = Namespace()

    def _compile_lists(self) -> dict[str, list[str]]:
        lists = self.collector.lists
        compiled: dict[str, list[str]] = {}
        for info in lists.values():
            items: list[str] = []
            for item in info.items:
                ref = lists.get(item)
                if ref is not None and ref.index < info.visibility:
                    items.extend(ref.items)
                else:
                    items.append(item)
            compiled[info.name] = items
        return compiled

    # --- parsing ------------------------------------------------------------------------------------

    def parse(self, owner: _Owner, text: str) -> Expr:
        try:
            return parse_condition(text)
        except ParseError as error:
            where = owner.locate(error.pos.offset)
            raise ConditionSyntaxError(
                f"{error.message} (in the condition at column {error.pos.column} of line {error.pos.line})",
                source=where.source,
                line=where.line,
                column=where.column,
                item=owner.label,
            ) from None

    def parse_macros(self) -> None:
        for macro in self.collector.macros.values():
            owner = self._macro_owner(macro)
            self.macro_ast[macro.name] = self.parse(owner, macro.condition.text)
        for macro in self.collector.macros.values():
            self._check_references(self.macro_ast[macro.name], self._macro_owner(macro))

    def _macro_owner(self, macro: MacroInfo) -> _Owner:
        return _Owner(f"macro '{macro.name}'", macro.condition, macro.where, macro.visibility)

    def _visible(self, owner: _Owner, name: str) -> MacroInfo | None:
        macro = self.collector.macros.get(name)
        if macro is None:
            return None
        if owner.visibility is not None and macro.index >= owner.visibility:
            return None
        return macro

    def _undefined(self, owner: _Owner, ref: MacroRef) -> RuleCompileError:
        where = owner.locate(ref.pos.offset)
        hint = "define the macro before it is used"
        if ref.name in self.lists:
            hint = f"'{ref.name}' is a list: use it as a value, e.g. `field in ({ref.name})`"
        return RuleCompileError(
            f"Undefined macro '{ref.name}' used in filter.",
            source=where.source,
            line=where.line,
            column=where.column,
            item=owner.label,
            hint=hint,
        )

    def _check_references(self, expr: Expr, owner: _Owner) -> None:
        if isinstance(expr, MacroRef):
            if self._visible(owner, expr.name) is None:
                raise self._undefined(owner, expr)
        elif isinstance(expr, And | Or):
            for child in expr.children:
                self._check_references(child, owner)
        elif isinstance(expr, Not):
            self._check_references(expr.child, owner)

    # --- compiling ----------------------------------------------------------------------------------

    def accessor(self, name: str, arg: str | None) -> Accessor:
        key = (name, arg)
        found = self.accessors.get(key)
        if found is None:
            found = self.accessors[key] = accessor_for(name, arg)
        return found

    def compile(self, expr: Expr, owner: _Owner) -> _Compiled:
        if isinstance(expr, Check):
            return self.compile_check(expr, owner)
        if isinstance(expr, MacroRef):
            return self.compile_macro(expr, owner)
        if isinstance(expr, Not):
            inner = self.compile(expr.child, owner)
            if inner.constant is not None:
                return _constant(not inner.constant)
            return _negation(inner)
        parts = [self.compile(child, owner) for child in expr.children]
        if isinstance(expr, And):
            return conjunction(self._merge_negations([term for part in parts for term in part.conjuncts]))
        alternatives = [alternative for part in parts for alternative in (part.alternatives or (part,))]
        return disjunction(self._merge_alternatives(alternatives))

    def _merge_negations(self, terms: list[_Compiled]) -> list[_Compiled]:
        """In an AND, `not x startswith a and not x startswith b` as `not (x startswith a or x startswith b)`,
        which then merges into one test (and the same for `not x = a and not x in (b, c)`)."""
        groups: dict[tuple[str, str], list[_Compiled]] = {}
        for term in terms:
            inner = term.negation_of
            if inner is not None and inner.mergeable is not None:
                groups.setdefault(inner.mergeable[:2], []).append(term)
        merged: list[_Compiled] = []
        for term in terms:
            inner = term.negation_of
            if inner is None or inner.mergeable is None:
                merged.append(term)
                continue
            group = groups.pop(inner.mergeable[:2], None)
            if group is None:
                continue  # already merged into its group's first member
            if len(group) == 1:
                merged.append(term)
                continue
            (alternative,) = self._merge_alternatives([member.negation_of for member in group if member.negation_of])
            merged.append(_negation(alternative))
        return merged

    def _merge_alternatives(self, parts: list[_Compiled]) -> list[_Compiled]:
        """In an OR, tests of one value against several constants become one test: `x startswith a or
        x startswith b` a test against the tuple (a, b), `x = a or x in (b, c)` a membership in {a, b, c}."""
        groups: dict[tuple[str, str], list[_Compiled]] = {}
        for part in parts:
            if part.mergeable is not None:
                groups.setdefault(part.mergeable[:2], []).append(part)
        merged: list[_Compiled] = []
        for part in parts:
            if part.mergeable is None:
                merged.append(part)
                continue
            group = groups.pop(part.mergeable[:2], None)
            if group is None:
                continue  # already merged into its group's first member
            if len(group) == 1:
                merged.append(part)
                continue
            kind, value = part.mergeable[:2]
            values = tuple(item for member in group if member.mergeable for item in member.mergeable[2])
            if kind == "prefix":
                source = f"((_v := {value}) is not None and _v.startswith({self.namespace.name(values)}))"
            else:
                source = f"({value} in {self.namespace.name(frozenset(values))})"
            merged.append(
                _Compiled(
                    _any([member.predicate for member in group]),
                    max(member.cost for member in group),
                    _merge_or([member.constraints for member in group]),
                    source,
                    mergeable=(kind, value, values),
                )
            )
        return merged

    def compile_macro(self, ref: MacroRef, owner: _Owner) -> _Compiled:
        macro = self._visible(owner, ref.name)
        if macro is None:
            raise self._undefined(owner, ref)
        done = self.macro_done.get(macro.name)
        if done is not None:
            return done
        if macro.name in self.macro_busy:
            where = owner.locate(ref.pos.offset)
            raise RuleCompileError(
                f"macro '{macro.name}' refers to itself",
                source=where.source,
                line=where.line,
                column=where.column,
                item=owner.label,
            )
        self.macro_busy.add(macro.name)
        try:
            compiled = self.compile(self.macro_ast[macro.name], self._macro_owner(macro))
        finally:
            self.macro_busy.discard(macro.name)
        self.macro_done[macro.name] = compiled
        return compiled

    def _error(self, owner: _Owner, offset: int, message: str, hint: str = "") -> RuleCompileError:
        where = owner.locate(offset)
        return RuleCompileError(
            message, source=where.source, line=where.line, column=where.column, item=owner.label, hint=hint
        )

    def _values(self, check: Check, owner: _Owner) -> list[str]:
        value = check.value
        if value is None:
            return []
        if isinstance(value, Item):
            if value.bare and value.text in self.lists:
                items = self.lists[value.text]
                if len(items) != 1:
                    raise self._error(
                        owner,
                        value.pos.offset,
                        f"list '{value.text}' used where a single value is expected",
                        hint=f"use `{check.field.text} in ({value.text})`",
                    )
                return list(items)
            return [value.text]
        values: list[str] = []
        for item in value.items:
            if item.bare and item.text in self.lists:
                values.extend(self.lists[item.text])
            else:
                values.append(item.text)
        return values

    def compile_check(self, check: Check, owner: _Owner) -> _Compiled:
        ref = check.field
        spec = FIELDS.get(ref.name)
        if spec is None:
            raise self._error(
                owner,
                ref.pos.offset,
                f"filter_check called with nonexistent field {ref.name}",
                hint="k8s_audit rules can use the ka.*, jevt.* and json.* fields listed in docs/fields.md",
            )
        try:
            get = self.accessor(ref.name, ref.arg)
        except ValueError as error:
            raise self._error(owner, ref.pos.offset, str(error)) from None
        values = self._values(check, owner)
        try:
            predicate = build_predicate(get, spec.is_list, check.op, values)
        except OperatorError as error:
            raise self._error(owner, check.pos.offset, f"{ref.text}: {error}") from None
        if ref.name in RAWTIME_FIELDS and check.op in ("=", "==") and values:
            predicate = rawtime_equals(values[0])
        cheap = spec.path.startswith(_CHEAP_SOURCES) or ref.text in INDEX_FIELDS
        cost = 1 if cheap else 20  # a body, the query string or the whole document must be parsed first
        if check.op in ("regex", "glob", "iglob", "pmatch"):
            cost += 1
        if check.op == "exists" and spec.always:
            return _constant(True)
        if not values and (check.op == "intersects" or (check.op == "in" and not spec.is_list)):
            return _constant(False)  # nothing is in an empty list (an allow/deny list the user has not filled)
        value = field_source(self.namespace, ref.text, get)
        if ref.name in RAWTIME_FIELDS and check.op in ("=", "=="):
            source = f"{self.namespace.name(predicate)}(ctx)"
        else:
            source = check_source(self.namespace, value, check.op, values, is_list=spec.is_list, fallback=predicate)
        key = INDEX_FIELDS.get(ref.text)
        if key is not None and check.op in ("=", "==", "in", "intersects"):
            return _Compiled(predicate, cost, {key: frozenset(values)}, source, index_only=True)
        merge = None if ref.name in RAWTIME_FIELDS else mergeable_test(value, check.op, values, is_list=spec.is_list)
        return _Compiled(predicate, cost, {}, source, mergeable=merge)

    # --- rules --------------------------------------------------------------------------------------

    def _function(self, compiled: _Compiled) -> Predicate:
        """The whole (sub)condition as one generated function."""
        if compiled.constant is not None:
            return compiled.predicate
        return build_function(self.namespace, compiled.source, compiled.predicate)

    def _residual(self, compiled: _Compiled) -> Predicate:
        """The rule's predicate for events its index values admit, as one generated function."""
        terms = [term for term in compiled.conjuncts if not term.index_only]
        fallback = _all([term.predicate for term in terms])
        if compiled.constant is not None:
            return fallback
        source = " and ".join(term.source for term in terms) or "True"
        return build_function(self.namespace, source, fallback)

    def compile_rule(self, info: RuleInfo, position: int) -> CompiledRule:
        label = f"rule '{info.name}'"
        condition = info.condition
        if info.exceptions:
            text = exception_condition(condition.text, info.exceptions, info.where)
            condition = ConditionText(text, [(start + 1, snippet) for start, snippet in condition.parts])
        owner = _Owner(label, condition, info.where, None)
        expr = self.parse(owner, condition.text)
        compiled = self.compile(expr, owner)
        try:
            output = compile_output(info.output, self.accessor)
        except OutputFormatError as error:
            where = info.where
            snippet = info.output_snippet
            if snippet is not None:
                lead = len(snippet.text) - len(snippet.text.lstrip())
                where = snippet.locate(error.offset + lead)
            raise RuleCompileError(
                f"invalid output: {error.message}",
                source=where.source,
                line=where.line,
                column=where.column,
                item=label,
            ) from None
        return CompiledRule(
            name=info.name,
            priority=info.priority,
            source=info.source,
            desc=info.desc,
            tags=tuple(sorted(info.tags)),
            enabled=info.enabled,
            output=output,
            predicate=compiled.predicate,
            constraints=compiled.constraints,
            position=position,
            residual=self._residual(compiled),
            never=compiled.constant is False,
            mitre=tuple(info.mitre),
            threat_matrix=tuple(info.threat_matrix),
        )

    def compile_stateful(self, info: RuleInfo, rule: CompiledRule) -> StatefulSpec:
        """The spec of a stateful rule: its condition selects events, its steps are compiled like conditions."""
        text = info.stateful
        assert text is not None
        steps: list[Predicate] = []
        step_constraints: list[Constraints] = []
        for index, snippet in enumerate(text.steps):
            owner = _Owner(f"rule '{info.name}' step {index + 1}", ConditionText.of(snippet), snippet.where, None)
            compiled = self.compile(self.parse(owner, snippet.text), owner)
            steps.append(self._function(compiled))
            step_constraints.append(compiled.constraints)
        rule_constraints = rule.constraints

        def admitted(key: tuple[object, ...]) -> bool:
            if not admits(rule_constraints, key):
                return False
            return not step_constraints or any(admits(constraints, key) for constraints in step_constraints)

        parts = RuleParts(
            rule.name,
            rule.residual,
            rule.priority,
            rule.output,
            rule.desc,
            rule.tags,
            rule.mitre,
            rule.threat_matrix,
            rule.source,
            admitted,
        )
        try:
            return build_spec(text, parts, steps)
        except SpecError as error:
            raise text.where.error(str(error), item=f"rule '{info.name}'") from None


def _all(predicates: list[Predicate]) -> Predicate:
    if not predicates:
        return lambda ctx: True
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda ctx: first(ctx) and second(ctx)
    if len(predicates) == 3:
        first, second, third = predicates
        return lambda ctx: first(ctx) and second(ctx) and third(ctx)
    head, rest = predicates[0], _all(predicates[1:])
    return lambda ctx: head(ctx) and rest(ctx)


def _any(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda ctx: first(ctx) or second(ctx)
    head, rest = predicates[0], _any(predicates[1:])
    return lambda ctx: head(ctx) or rest(ctx)


def conjunction(terms: list[_Compiled]) -> _Compiled:
    """AND of flattened terms: constants folded, cheapest terms first."""
    if any(term.constant is False for term in terms):
        return _constant(False)
    kept = sorted((term for term in terms if term.constant is None), key=lambda term: term.cost)
    if not kept:
        return _constant(True)
    if len(kept) == 1:
        return kept[0]
    return _Compiled(
        _all([term.predicate for term in kept]),
        sum(term.cost for term in kept),
        _merge_and([term.constraints for term in kept]),
        "(" + " and ".join(term.source for term in kept) + ")",
        terms=tuple(kept),
    )


def disjunction(parts: list[_Compiled]) -> _Compiled:
    """OR of alternatives: constants folded, cheapest alternatives first."""
    if any(part.constant is True for part in parts):
        return _constant(True)
    kept = sorted((part for part in parts if part.constant is None), key=lambda part: part.cost)
    if not kept:
        return _constant(False)
    if len(kept) == 1:
        return kept[0]
    return _Compiled(
        _any([part.predicate for part in kept]),
        sum(part.cost for part in kept),
        _merge_or([part.constraints for part in kept]),
        "(" + " or ".join(part.source for part in kept) + ")",
        alternatives=tuple(kept),
    )


def _merge_and(parts: list[Constraints]) -> Constraints:
    merged: Constraints = {}
    for constraints in parts:
        for key, allowed in constraints.items():
            merged[key] = merged[key] & allowed if key in merged else allowed
    return merged


def _merge_or(parts: list[Constraints]) -> Constraints:
    if not parts:
        return {}
    keys = set(parts[0])
    for constraints in parts[1:]:
        keys &= set(constraints)
    return {key: frozenset().union(*(constraints[key] for constraints in parts)) for key in keys}


def compile_rules(collector: Collector) -> RuleSet:
    """Compile every k8s_audit rule of the collector (disabled ones too: their errors still count)."""
    compiler = _Compiler(collector)
    compiler.parse_macros()
    rules: list[CompiledRule] = []
    stateful: list[StatefulSpec] = []
    for info in collector.rules.values():
        if info.unknown_source:
            continue
        if info.stateful is not None:
            spec = compiler.compile_stateful(info, compiler.compile_rule(info, len(rules)))
            if info.enabled:
                stateful.append(spec)
            continue
        rules.append(compiler.compile_rule(info, len(rules)))
    return RuleSet(rules, list(collector.notices), stateful)
