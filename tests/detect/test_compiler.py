"""The compiler against an independent reading of Falco's semantics, on generated conditions.

Random conditions over a few fields (some missing in some events, one a list) are rendered as
rule text, compiled through the index, the generated code and the closures, and compared with a
small reference evaluator written from Falco's documented rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubetrail.detect import Engine, EventContext, Matching
from tests.detect.helpers import REMOVE, context, rule, ruleset

SCALARS = {"ka.verb": ["get", "create", "delete"], "ka.target.namespace": ["default", "kube-system", "x y"]}
SCALARS["ka.impuser.name"] = ["alice", "bob"]
SCALARS["jevt.value[/stage]"] = ["ResponseComplete", "ResponseStarted"]
LIST_FIELD = "ka.user.groups"
GROUPS = ["dev", "ops", "system:authenticated"]


@dataclass(frozen=True)
class Leaf:
    field: str
    op: str
    values: tuple[str, ...]

    def text(self) -> str:
        quoted = [f'"{value}"' if " " in value else value for value in self.values]
        if self.op == "exists":
            return f"{self.field} exists"
        if self.op in ("in", "intersects"):
            return f"{self.field} {self.op} ({', '.join(quoted)})"
        return f"{self.field} {self.op} {quoted[0]}"

    def evaluate(self, event: dict[str, Any]) -> bool:
        value = event.get(self.field)
        if self.op == "exists":
            return value is not None
        if value is None:
            return False
        if isinstance(value, list):
            if self.op == "in":
                return all(item in self.values for item in value)
            return any(item in self.values for item in value)
        if self.op in ("in", "intersects"):
            return value in self.values
        rhs = self.values[0]
        return {
            "=": value == rhs,
            "!=": value != rhs,
            "startswith": value.startswith(rhs),
            "endswith": value.endswith(rhs),
            "contains": rhs in value,
        }[self.op]


@dataclass(frozen=True)
class Node:
    kind: str
    children: tuple[Any, ...]

    def text(self) -> str:
        if self.kind == "not":
            return f"not ({self.children[0].text()})"
        return "(" + f" {self.kind} ".join(child.text() for child in self.children) + ")"

    def evaluate(self, event: dict[str, Any]) -> bool:
        if self.kind == "not":
            return not self.children[0].evaluate(event)
        if self.kind == "and":
            return all(child.evaluate(event) for child in self.children)
        return any(child.evaluate(event) for child in self.children)


def _scalar_leaf(field: str) -> st.SearchStrategy[Leaf]:
    values = SCALARS[field]
    single = st.builds(
        lambda op, value: Leaf(field, op, (value,)),
        st.sampled_from(["=", "!=", "startswith", "endswith", "contains"]),
        st.sampled_from([*values, "e", ""]).filter(bool),
    )
    many = st.builds(
        lambda op, chosen: Leaf(field, op, tuple(chosen)),
        st.sampled_from(["in", "intersects"]),
        st.lists(st.sampled_from(values), min_size=1, max_size=3),
    )
    return st.one_of(single, many, st.just(Leaf(field, "exists", ())))


LEAVES = st.one_of(
    *[_scalar_leaf(field) for field in SCALARS],
    st.builds(
        lambda op, chosen: Leaf(LIST_FIELD, op, tuple(chosen)),
        st.sampled_from(["in", "intersects"]),
        st.lists(st.sampled_from(GROUPS), min_size=1, max_size=3),
    ),
    st.just(Leaf(LIST_FIELD, "exists", ())),
)
EXPRESSIONS = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.builds(lambda child: Node("not", (child,)), inner),
        st.builds(lambda kids: Node("and", tuple(kids)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda kids: Node("or", tuple(kids)), st.lists(inner, min_size=2, max_size=3)),
    ),
    max_leaves=8,
)
EVENTS = st.fixed_dictionaries(
    {
        "ka.verb": st.sampled_from(SCALARS["ka.verb"]),
        "ka.target.namespace": st.sampled_from([*SCALARS["ka.target.namespace"], None]),
        "ka.impuser.name": st.sampled_from([*SCALARS["ka.impuser.name"], None]),
        "jevt.value[/stage]": st.sampled_from(SCALARS["jevt.value[/stage]"]),
        LIST_FIELD: st.sampled_from([None, ["dev"], ["dev", "system:authenticated"], ["ops", "dev"]]),
    }
)


def _context(event: dict[str, Any]) -> EventContext:
    namespace = event["ka.target.namespace"]
    objectref: Any = {"resource": "pods", "name": "p"} | ({"namespace": namespace} if namespace else {})
    user: dict[str, Any] = {"username": "jane"}
    if event[LIST_FIELD] is not None:
        user["groups"] = event[LIST_FIELD]
    impersonated = {"username": event["ka.impuser.name"]} if event["ka.impuser.name"] else REMOVE
    return context(
        verb=event["ka.verb"],
        stage=event["jevt.value[/stage]"],
        objectRef=objectref,
        user=user,
        impersonatedUser=impersonated,
    )


@settings(max_examples=150, deadline=None)
@given(EXPRESSIONS, st.lists(EVENTS, min_size=1, max_size=6))
def test_generated_conditions_match_the_reference_semantics(
    expression: Leaf | Node, events: list[dict[str, Any]]
) -> None:
    engine = Engine(ruleset(rule(expression.text())), matching=Matching.ALL)
    compiled = ruleset(rule(expression.text())).rules[0]
    for event in events:
        ctx = _context(event)
        expected = expression.evaluate(event)
        assert compiled.predicate(ctx) is expected, expression.text()
        assert bool(engine.matches(ctx)) is expected, expression.text()


@settings(max_examples=60, deadline=None)
@given(EXPRESSIONS)
def test_macros_and_lists_inline_to_the_same_meaning(expression: Leaf | Node) -> None:
    """The same condition behind a macro and with its values in a list behaves identically."""
    text = expression.text()
    as_macro = f"- macro: wrapped\n  condition: {json.dumps(text)}\n" + rule("wrapped")
    direct = ruleset(rule(text)).rules[0]
    wrapped = ruleset(as_macro).rules[0]
    for verb in SCALARS["ka.verb"]:
        for namespace in (None, "default"):
            event = {
                "ka.verb": verb,
                "ka.target.namespace": namespace,
                "ka.impuser.name": None,
                "jevt.value[/stage]": "ResponseComplete",
                LIST_FIELD: ["dev"],
            }
            ctx = _context(event)
            assert direct.predicate(ctx) == wrapped.predicate(ctx) == expression.evaluate(event)
