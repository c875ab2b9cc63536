"""Read the stateful keys of a rule item (`threshold`, `sequence`, `first_seen`) from YAML, with positions.

The values are checked here (durations, counts, field lists) so a bad spec is reported at its line;
step conditions stay text, compiled later with the rule files' lists and macros.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import yaml

from kubetrail.detect.collector import Snippet, Where
from kubetrail.detect.errors import RuleLoadError
from kubetrail.detect.stateful.spec import SpecError, field_accessor, parse_duration

STATEFUL_KEYS = ("threshold", "sequence", "first_seen")
_ALLOWED = {
    "threshold": {"count", "window", "group_by", "distinct", "max_keys"},
    "sequence": {"within", "by", "steps", "ordered", "max_keys"},
    "first_seen": {"key", "baseline", "learn", "max_keys"},
}
_TRUE = {"true", "True", "yes", "on"}
_FALSE = {"false", "False", "no", "off"}


@dataclass
class StatefulText:
    """A rule's stateful form as written: kind, parameters (seconds, counts, fields) and step conditions."""

    kind: str
    where: Where
    count: int = 0
    window_s: float = 0
    group_by: tuple[str, ...] = ()  # a sequence's `by`
    distinct: str | None = None
    within_s: float = 0
    steps: list[Snippet] = field(default_factory=list)
    ordered: bool = True
    key: tuple[str, ...] = ()
    baseline_s: float = 0
    learn_s: float = 0
    max_keys: int | None = None


def _get(mapping: yaml.MappingNode, key: str) -> yaml.Node | None:
    for key_node, value_node in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return value_node  # type: ignore[no-any-return]
    return None


class _Reader:
    def __init__(self, locate: Callable[[yaml.Node], Where], label: str) -> None:
        self.locate = locate
        self.label = label

    def error(self, node: yaml.Node, message: str, hint: str = "") -> RuleLoadError:
        return self.locate(node).error(message, item=self.label, hint=hint)

    def scalar(self, node: yaml.Node, name: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.value == "":
            raise self.error(node, f"'{name}' must be a non-empty scalar value")
        return str(node.value)

    def duration(self, node: yaml.Node, name: str) -> float:
        text = self.scalar(node, name)
        try:
            return float(parse_duration(text))
        except SpecError as error:
            raise self.error(
                node, f"'{name}': {error}", hint="write durations as Ns, Nm, Nh or Nd: 30s, 5m, 24h, 30d"
            ) from None

    def positive(self, node: yaml.Node, name: str) -> int:
        text = self.scalar(node, name)
        if not text.isdigit() or int(text) < 1:
            raise self.error(node, f"'{name}' must be a whole number of at least 1, not {text!r}")
        return int(text)

    def fields(self, node: yaml.Node, name: str) -> tuple[str, ...]:
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        names = tuple(self.scalar(item, name) for item in items)
        for item, text in zip(items, names, strict=True):
            try:
                field_accessor(text)
            except SpecError as error:
                raise self.error(
                    item, f"'{name}': {error}", hint="use ka.*, jevt.* or json.* fields (docs/fields.md)"
                ) from None
        return names

    def boolean(self, node: yaml.Node, name: str) -> bool:
        text = self.scalar(node, name)
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise self.error(node, f"'{name}' must be true or false, not {text!r}")


def read_stateful(
    item: yaml.MappingNode,
    label: str,
    locate: Callable[[yaml.Node], Where],
    snippet: Callable[[yaml.ScalarNode], Snippet],
) -> StatefulText | None:
    """The rule item's stateful form, or None for a plain (stateless) rule."""
    present = [(key, node) for key in STATEFUL_KEYS if (node := _get(item, key)) is not None]
    reader = _Reader(locate, label)
    if not present:
        return None
    if len(present) > 1:
        names = " and ".join(f"'{key}'" for key, _ in present)
        raise reader.error(item, f"a rule may have only one of threshold, sequence, first_seen; this one has {names}")
    kind, node = present[0]
    if not isinstance(node, yaml.MappingNode):
        raise reader.error(node, f"'{kind}' must be a mapping, e.g. {_EXAMPLES[kind]}")
    values: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key not in _ALLOWED[kind]:
            allowed = ", ".join(sorted(_ALLOWED[kind]))
            raise reader.error(key_node, f"unknown key '{key}' in '{kind}'", hint=f"'{kind}' takes {allowed}")
        values[key] = value_node
    text = StatefulText(kind, locate(node))

    def need(key: str) -> yaml.Node:
        found = values.get(key)
        if found is None:
            raise reader.error(node, f"'{kind}' needs '{key}'", hint=f"e.g. {_EXAMPLES[kind]}")
        return found

    if "max_keys" in values:
        text.max_keys = reader.positive(values["max_keys"], "max_keys")
    if kind == "threshold":
        text.count = reader.positive(need("count"), "count")
        text.window_s = reader.duration(need("window"), "window")
        text.group_by = reader.fields(values["group_by"], "group_by") if "group_by" in values else ()
        if "distinct" in values:
            (text.distinct,) = reader.fields(values["distinct"], "distinct")
    elif kind == "sequence":
        text.within_s = reader.duration(need("within"), "within")
        text.group_by = reader.fields(values["by"], "by") if "by" in values else ()
        text.ordered = reader.boolean(values["ordered"], "ordered") if "ordered" in values else True
        steps = need("steps")
        if not isinstance(steps, yaml.SequenceNode) or len(steps.value) < 2:
            raise reader.error(steps, "'steps' must be a list of at least two steps, each {condition: ...}")
        for step in steps.value:
            condition = _get(step, "condition") if isinstance(step, yaml.MappingNode) else None
            if not isinstance(condition, yaml.ScalarNode) or condition.value == "":
                raise reader.error(step, "each step must be a mapping with a non-empty 'condition'")
            text.steps.append(snippet(condition))
    else:
        text.key = reader.fields(need("key"), "key")
        text.baseline_s = reader.duration(need("baseline"), "baseline")
        text.learn_s = reader.duration(values["learn"], "learn") if "learn" in values else 0.0
    return text


# What `override: {threshold: replace}` (and the like) may change: the parameters, not the structure of steps.
_TUNABLE = {
    "threshold": {"count", "window", "group_by", "distinct", "max_keys"},
    "sequence": {"within", "by", "max_keys"},
    "first_seen": {"key", "baseline", "learn", "max_keys"},
}


def read_stateful_override(
    node: yaml.Node, kind: str, label: str, locate: Callable[[yaml.Node], Where]
) -> dict[str, object]:
    """The parameters an `override: {<kind>: replace}` gives (attribute of StatefulText → new value).

    Only the keys written change; the rest keep the overridden rule's values, so `{count: 3}` lowers a threshold.
    """
    reader = _Reader(locate, label)
    if not isinstance(node, yaml.MappingNode) or not node.value:
        raise reader.error(node, f"'{kind}' must be a mapping of the parameters to change, e.g. {{count: 3}}")
    changes: dict[str, object] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key not in _TUNABLE[kind]:
            allowed = ", ".join(sorted(_TUNABLE[kind]))
            raise reader.error(key_node, f"'{key}' of '{kind}' cannot be overridden", hint=f"override {allowed}")
        if key == "max_keys":
            changes["max_keys"] = reader.positive(value_node, key)
        elif key == "count":
            changes["count"] = reader.positive(value_node, key)
        elif key in ("window", "within", "baseline", "learn"):
            changes[f"{key}_s"] = reader.duration(value_node, key)
        elif key in ("group_by", "by"):
            changes["group_by"] = reader.fields(value_node, key)
        elif key == "distinct":
            (changes["distinct"],) = reader.fields(value_node, key)
        else:
            changes["key"] = reader.fields(value_node, key)
    return changes


_EXAMPLES = {
    "threshold": "{count: 20, window: 5m, group_by: [ka.user.name]}",
    "sequence": "{within: 10m, by: [ka.user.name], steps: [{condition: ...}, {condition: ...}]}",
    "first_seen": "{key: [ka.user.name, ka.target.namespace], baseline: 30d, learn: 24h}",
}
