"""Compiled Sigma rules (fast paths, grouped value lists, the verb index) agree with a plain reading of the rule.

The reference walks pySigma's condition tree per event and tests every value against every field value
with the single-value matchers, without any grouping, typed shortcut or index.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sigma.collection import SigmaCollection
from sigma.conditions import ConditionAND, ConditionFieldEqualsValueExpression, ConditionNOT, ConditionOR
from sigma.rule import SigmaRule

from kubetrail.detect import Engine, RuleSource, load_ruleset
from kubetrail.detect.context import EventContext
from kubetrail.detect.sigma.fields import path_getter
from kubetrail.detect.sigma.matchers import value_matcher
from kubetrail.model import decode_event
from tests.detect.helpers import event_dict
from tests.detect.sigma.helpers import rule_text

FIELDS: dict[str, list[Any]] = {
    "verb": ["get", "list", "create", "delete", "CREATE"],
    "objectRef.resource": ["pods", "secrets", "Pods", "deployments"],
    "user.username": ["jane", "admin", "system:node:a"],
    "responseStatus.code": [200, 201, 403],
    "annotations.authorization.k8s.io/decision": ["allow", "forbid"],
}
MODIFIERS = ["", "|contains", "|startswith", "|endswith", "|cased"]


@st.composite
def selections(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    chosen: dict[str, dict[str, Any]] = {}
    for index in range(draw(st.integers(1, 3))):
        fields = draw(st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=3, unique=True))
        selection: dict[str, Any] = {}
        for field in fields:
            pool = FIELDS[field]
            values = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
            if all(isinstance(value, str) for value in values):
                modifier = draw(st.sampled_from(MODIFIERS))
                values = [value[:3] if modifier in ("|contains", "|startswith") else value for value in values]
            else:
                modifier = ""
            selection[field + modifier] = values if len(values) > 1 else values[0]
        chosen[f"sel_{index}"] = selection
    return chosen


@st.composite
def conditions(draw: st.DrawFn, names: list[str]) -> str:
    def term() -> str:
        kind = draw(st.sampled_from(["name", "not", "one_of", "all_of"]))
        if kind == "name":
            return draw(st.sampled_from(names))
        if kind == "not":
            return "not " + draw(st.sampled_from(names))
        return "1 of sel_*" if kind == "one_of" else "all of sel_*"

    text = term()
    for _ in range(draw(st.integers(0, 2))):
        text = f"({text}) {draw(st.sampled_from(['and', 'or']))} {term()}"
    return text


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    return event_dict(
        verb=draw(st.sampled_from(["get", "list", "create", "delete", "patch"])),
        objectRef={"resource": draw(st.sampled_from(["pods", "secrets", "deployments", "PODS"])), "name": "x"},
        user={"username": draw(st.sampled_from(["jane", "admin", "system:node:a", "JANE"]))},
        responseStatus={"metadata": {}, "code": draw(st.sampled_from([200, 201, 403, 404]))},
        annotations={"authorization.k8s.io/decision": draw(st.sampled_from(["allow", "forbid"]))},
    )


def _yaml(selections_: dict[str, dict[str, Any]], condition: str) -> str:
    lines = []
    for name, selection in selections_.items():
        lines.append(f"    {name}:")
        for key, value in selection.items():
            lines.append(f"        {key}: {json.dumps(value)}")
    lines.append(f"    condition: {condition}")
    return "\n".join(lines) + "\n"


def _reference(node: object, ctx: EventContext) -> bool:
    if isinstance(node, ConditionAND):
        return all(_reference(arg, ctx) for arg in node.args)
    if isinstance(node, ConditionOR):
        return any(_reference(arg, ctx) for arg in node.args)
    if isinstance(node, ConditionNOT):
        return not _reference(node.args[0], ctx)
    assert isinstance(node, ConditionFieldEqualsValueExpression)
    matcher = value_matcher(node.value)
    return any(matcher(value) for value in path_getter(node.field)(ctx))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_compiled_rule_agrees_with_the_reference(data: st.DataObject) -> None:
    chosen = data.draw(selections())
    condition = data.draw(conditions(sorted(chosen)))
    text = rule_text(_yaml(chosen, condition))
    (rule,) = SigmaCollection.from_yaml(text).rules
    assert isinstance(rule, SigmaRule)
    tree = rule.detection.parsed_condition[0].parsed
    engine = Engine(load_ruleset([RuleSource("rule.yml", text)]))
    for _ in range(8):
        raw = json.dumps(data.draw(events())).encode()
        ctx = EventContext(decode_event(raw), "", raw)
        assert bool(engine.detect(ctx)) is _reference(tree, ctx), (text, raw)
