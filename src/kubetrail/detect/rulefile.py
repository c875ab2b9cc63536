"""Read Falco rule files (YAML) into a Collector, item by item, as Falco's rule loader does.

Items: `required_engine_version`, `required_plugin_versions`, `list`, `macro`, `rule` (with
`exceptions`, `override: {key: append|replace}`, the legacy `append: true`, and the `enabled`-only
form). Several files load in order into one collector, so later files change earlier ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import yaml

from kubetrail.detect.collector import (
    Collector,
    ConditionText,
    Entry,
    ExceptionInfo,
    ListInfo,
    MacroInfo,
    RuleInfo,
    RuleUpdate,
    Snippet,
    Where,
    parse_version,
)
from kubetrail.detect.errors import RuleLoadError
from kubetrail.detect.priority import Priority
from kubetrail.detect.stateful.ruletext import STATEFUL_KEYS, read_stateful, read_stateful_override

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader

_TRUE = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}
_FALSE = {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}
_RULE_APPENDABLE = ("condition", "output", "desc", "tags", "exceptions")
_RULE_REPLACEABLE = (
    "condition",
    "output",
    "desc",
    "priority",
    "tags",
    "exceptions",
    "enabled",
    "warn_evttypes",
    "skip-if-unknown-filter",
    *STATEFUL_KEYS,
)


@dataclass(frozen=True, slots=True)
class RuleSource:
    """The text of one rules file and the name errors use for it."""

    name: str
    text: str


class _File:
    """Helpers bound to one file: positions and typed values of YAML nodes."""

    def __init__(self, source: RuleSource) -> None:
        self.name = source.name
        self.text = source.text

    def where(self, node: yaml.Node) -> Where:
        return Where(self.name, node.start_mark.line + 1, node.start_mark.column + 1)

    def snippet(self, node: yaml.ScalarNode) -> Snippet:
        return Snippet(
            node.value,
            self.where(node),
            self.text,
            node.start_mark.index,
            node.end_mark.index,
            node.style,
        )


def _get(mapping: yaml.MappingNode, key: str) -> yaml.Node | None:
    for key_node, value_node in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return value_node  # type: ignore[no-any-return]
    return None


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


class _Reader:
    def __init__(self, collector: Collector, file: _File) -> None:
        self.collector = collector
        self.file = file

    # --- typed values -------------------------------------------------------------------------------

    def scalar(self, item: yaml.MappingNode, key: str, context: Where, *, optional: bool = False) -> str | None:
        node = _get(item, key)
        if node is None:
            if optional:
                return None
            raise context.error(f"Item has no mapping for key '{key}'")
        if _is_null(node):
            raise context.error(f"Mapping for key '{key}' is empty")
        if not isinstance(node, yaml.ScalarNode):
            raise self.file.where(node).error(f"Value for key '{key}' is not a scalar value")
        if node.value == "":
            raise self.file.where(node).error(f"Value for key '{key}' must be non-empty")
        return str(node.value)

    def required(self, item: yaml.MappingNode, key: str, context: Where) -> str:
        value = self.scalar(item, key, context)
        assert value is not None
        return value

    def scalar_node(self, item: yaml.MappingNode, key: str, context: Where) -> yaml.ScalarNode:
        self.required(item, key, context)
        node = _get(item, key)
        assert isinstance(node, yaml.ScalarNode)
        return node

    def boolean(self, item: yaml.MappingNode, key: str, context: Where) -> bool | None:
        value = self.scalar(item, key, context, optional=True)
        if value is None:
            return None
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        node = _get(item, key)
        assert node is not None
        raise self.file.where(node).error(f"Can't decode YAML scalar value for key '{key}' as a boolean: {value!r}")

    def sequence(self, item: yaml.MappingNode, key: str, context: Where, *, optional: bool) -> list[str] | None:
        node = _get(item, key)
        if node is None:
            if optional:
                return None
            raise context.error(f"Item has no mapping for key '{key}'")
        if not isinstance(node, yaml.SequenceNode):
            raise self.file.where(node).error(f"Value for key '{key}' is not a sequence")
        values: list[str] = []
        for child in node.value:
            if not isinstance(child, yaml.ScalarNode):
                raise self.file.where(child).error(f"Sequence value of '{key}' is not scalar")
            values.append(str(child.value))
        return values

    def priority(self, item: yaml.MappingNode, context: Where) -> Priority:
        node = self.scalar_node(item, "priority", context)
        try:
            return Priority.parse(node.value)
        except ValueError:
            names = ", ".join(priority.name for priority in Priority)
            raise self.file.where(node).error(f"Invalid priority '{node.value}'", hint=f"use one of {names}") from None

    def overrides(
        self, item: yaml.MappingNode, appendable: tuple[str, ...], replaceable: tuple[str, ...], context: Where
    ) -> tuple[set[str], set[str]]:
        node = _get(item, "override")
        if node is None:
            return set(), set()
        if not isinstance(node, yaml.MappingNode):
            raise self.file.where(node).error("Value for key 'override' must be a mapping of key: append|replace")
        append: set[str] = set()
        replace: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            operation = str(value_node.value) if isinstance(value_node, yaml.ScalarNode) else ""
            where = self.file.where(key_node)
            if operation == "append":
                if key not in appendable:
                    raise where.error(f"Key '{key}' cannot be appended to, use 'replace' instead")
                append.add(key)
            elif operation == "replace":
                if key not in replaceable:
                    raise where.error(f"Key '{key}' cannot be replaced")
                replace.add(key)
            else:
                allowed = " ".join(
                    op for op, ok in (("append", key in appendable), ("replace", key in replaceable)) if ok
                )
                raise where.error(
                    f"Invalid override operation for key '{key}': '{operation}'. Allowed values are: {allowed}"
                )
        return append, replace

    # --- exceptions ---------------------------------------------------------------------------------

    def entry(self, node: yaml.Node, what: str) -> Entry:
        if isinstance(node, yaml.ScalarNode):
            if node.value == "":
                raise self.file.where(node).error(f"Value of exception {what} must be non-empty")
            return Entry(str(node.value))
        if isinstance(node, yaml.SequenceNode):
            return Entry(items=[self.entry(child, what) for child in node.value])
        raise self.file.where(node).error(f"Exception {what} must be a string or a list")

    def exceptions(self, item: yaml.MappingNode, context: Where, *, append: bool) -> list[ExceptionInfo] | None:
        node = _get(item, "exceptions")
        if node is None or _is_null(node):
            return None
        if not isinstance(node, yaml.SequenceNode):
            raise self.file.where(node).error("Rule exceptions must be a sequence")
        found: list[ExceptionInfo] = []
        for child in node.value:
            where = self.file.where(child)
            if not isinstance(child, yaml.MappingNode):
                raise where.error("Rule exception must be a mapping")
            name = self.required(child, "name", where)
            if any(existing.name == name for existing in found):
                raise where.error("Exceptions names in the same object must be unique", item=f"exception '{name}'")
            info = ExceptionInfo(name, where)
            fields = _get(child, "fields")
            if fields is None and not append:
                raise where.error("Item has no mapping for key 'fields'", item=f"exception '{name}'")
            if fields is not None:
                info.fields = self.entry(fields, "fields")
            comps = _get(child, "comps")
            if comps is not None:
                info.comps = self.entry(comps, "comps")
            values = _get(child, "values")
            if values is not None:
                if not isinstance(values, yaml.SequenceNode):
                    raise self.file.where(values).error("Rule exception values must be a sequence")
                info.values = [self.entry(value, "values") for value in values.value]
            elif append:
                self.collector.notice("Overriding/appending exception with no values", where)
            found.append(info)
        return found

    # --- items --------------------------------------------------------------------------------------

    def read_item(self, item: yaml.Node) -> None:
        where = self.file.where(item)
        if not isinstance(item, yaml.MappingNode):
            raise where.error("Unexpected element type. Each element should be a yaml associative array.")
        if _get(item, "required_engine_version") is not None:
            self.read_engine_version(item, where)
        elif _get(item, "required_plugin_versions") is not None:
            self.read_plugin_versions(item)
        elif _get(item, "list") is not None:
            self.read_list(item, where)
        elif _get(item, "macro") is not None:
            self.read_macro(item, where)
        elif _get(item, "rule") is not None:
            self.read_rule(item, where)
        else:
            self.collector.notice("Unknown top level item", where)

    def read_engine_version(self, item: yaml.MappingNode, where: Where) -> None:
        text = self.required(item, "required_engine_version", where)
        version = (0, int(text), 0) if text.isdigit() else parse_version(text, where, "engine version")
        self.collector.require_engine(version, where)

    def read_plugin_versions(self, item: yaml.MappingNode) -> None:
        node = _get(item, "required_plugin_versions")
        assert node is not None
        if not isinstance(node, yaml.SequenceNode):
            raise self.file.where(node).error("Value of required_plugin_versions must be a sequence")
        for plugin in node.value:
            where = self.file.where(plugin)
            if not isinstance(plugin, yaml.MappingNode):
                raise where.error("Plugin version must be a mapping")
            alternatives = [(self.required(plugin, "name", where), self.required(plugin, "version", where))]
            others = _get(plugin, "alternatives")
            if others is not None:
                if not isinstance(others, yaml.SequenceNode):
                    raise self.file.where(others).error("Value of plugin version alternatives must be a sequence")
                for alternative in others.value:
                    alt_where = self.file.where(alternative)
                    if not isinstance(alternative, yaml.MappingNode):
                        raise alt_where.error("Plugin version alternative must be a mapping")
                    alternatives.append(
                        (
                            self.required(alternative, "name", alt_where),
                            self.required(alternative, "version", alt_where),
                        )
                    )
            self.collector.require_plugins(alternatives, where)

    def read_list(self, item: yaml.MappingNode, where: Where) -> None:
        name = self.required(item, "list", where)
        items = self.sequence(item, "items", where, optional=False) or []
        append = self.boolean(item, "append", where) or False
        if append:
            self.collector.notice("'append' key is deprecated. Add an 'append' entry under 'override' instead.", where)
        override_append, override_replace = self.overrides(item, ("items",), ("items",), where)
        if append and (override_append or override_replace):
            raise where.error("Keys 'override' and 'append: true' cannot be used together.", item=f"list '{name}'")
        info = ListInfo(name, items, where)
        if append or "items" in override_append:
            self.collector.append_list(info)
        else:
            self.collector.define_list(info)

    def read_macro(self, item: yaml.MappingNode, where: Where) -> None:
        name = self.required(item, "macro", where)
        condition = self.file.snippet(self.scalar_node(item, "condition", where))
        append = self.boolean(item, "append", where) or False
        if append:
            self.collector.notice("'append' key is deprecated. Add an 'append' entry under 'override' instead.", where)
        override_append, override_replace = self.overrides(item, ("condition",), ("condition",), where)
        if append and (override_append or override_replace):
            raise where.error("Keys 'override' and 'append: true' cannot be used together.", item=f"macro '{name}'")
        if append or "condition" in override_append:
            self.collector.append_macro(name, condition, where)
        else:
            self.collector.define_macro(MacroInfo(name, ConditionText.of(condition), where))

    def read_rule(self, item: yaml.MappingNode, where: Where) -> None:
        name = self.required(item, "rule", where)
        label = f"rule '{name}'"
        has_append = self.boolean(item, "append", where) or False
        if has_append:
            self.collector.notice("'append' key is deprecated. Add an 'append' entry under 'override' instead.", where)
        override_append, override_replace = self.overrides(item, _RULE_APPENDABLE, _RULE_REPLACEABLE, where)
        if has_append and (override_append or override_replace):
            raise where.error("Keys 'override' and 'append: true' cannot be used together.", item=label)
        if override_append or override_replace:
            self.read_rule_overrides(item, name, where, override_append, override_replace)
        elif has_append:
            update = RuleUpdate(name, where)
            if _get(item, "condition") is not None:
                update.condition = self.file.snippet(self.scalar_node(item, "condition", where))
            if _get(item, "exceptions") is not None:
                update.exceptions = self.exceptions(item, where, append=True)
            self.collector.append_rule(update, "append")
        elif all(_get(item, key) is None for key in ("condition", "output", "desc", "priority")):
            enabled = self.boolean(item, "enabled", where)
            if enabled is None:
                raise where.error("Item has no mapping for key 'enabled'", item=label)
            self.collector.notice(
                "The standalone 'enabled' key usage is deprecated. Use 'override' with 'replace' instead.", where
            )
            self.collector.enable_rule(name, enabled, where)
        else:
            stateful = read_stateful(item, label, self.file.where, self.file.snippet)
            if stateful is not None and stateful.kind == "sequence" and _get(item, "condition") is None:
                condition = Snippet("ka.stage exists", where)
            else:
                condition = self.file.snippet(self.scalar_node(item, "condition", where))
            output = self.file.snippet(self.scalar_node(item, "output", where))
            info = RuleInfo(
                name=name,
                where=where,
                condition=ConditionText.of(condition),
                output=output.text.strip(),
                output_snippet=output,
                desc=self.required(item, "desc", where),
                priority=self.priority(item, where),
            )
            info.source = self.scalar(item, "source", where, optional=True) or info.source
            enabled = self.boolean(item, "enabled", where)
            info.enabled = True if enabled is None else enabled
            info.tags = set(self.sequence(item, "tags", where, optional=True) or [])
            info.exceptions = self.exceptions(item, where, append=False) or []
            info.mitre = self.sequence(item, "mitre", where, optional=True) or []
            info.threat_matrix = self.sequence(item, "threat_matrix", where, optional=True) or []
            info.stateful = stateful
            self.collector.define_rule(info)

    def read_rule_overrides(
        self, item: yaml.MappingNode, name: str, where: Where, append: set[str], replace: set[str]
    ) -> None:
        expected = {key for key in (*_RULE_APPENDABLE, *_RULE_REPLACEABLE) if _get(item, key) is not None}

        def take(keys: set[str], key: str, kind: str) -> bool:
            if key not in keys:
                return False
            if key not in expected:
                raise where.error(f"An {kind} override for '{key}' was specified but '{key}' is not defined")
            expected.discard(key)
            return True

        for kind, keys in (("append", append), ("replace", replace)):
            if not keys:
                continue
            update = RuleUpdate(name, where)
            if take(keys, "condition", kind):
                update.condition = self.file.snippet(self.scalar_node(item, "condition", where))
            if take(keys, "exceptions", kind):
                update.exceptions = self.exceptions(item, where, append=True) or []
            if take(keys, "output", kind):
                update.output = self.file.snippet(self.scalar_node(item, "output", where))
            if take(keys, "desc", kind):
                update.desc = self.required(item, "desc", where)
            if take(keys, "tags", kind):
                update.tags = set(self.sequence(item, "tags", where, optional=False) or [])
            if kind == "replace":
                if take(keys, "priority", kind):
                    update.priority = self.priority(item, where)
                if take(keys, "enabled", kind):
                    update.enabled = self.boolean(item, "enabled", where)
                for stateful_key in STATEFUL_KEYS:
                    if take(keys, stateful_key, kind):
                        node = _get(item, stateful_key)
                        assert node is not None
                        changes = read_stateful_override(node, stateful_key, f"rule '{name}'", self.file.where)
                        update.stateful = (stateful_key, changes)
                take(keys, "warn_evttypes", kind)
                take(keys, "skip-if-unknown-filter", kind)
                self.collector.replace_rule(update)
            else:
                self.collector.append_rule(update, "override: append")
        for key in sorted(expected):
            raise where.error(f"Unexpected key '{key}': no corresponding entry under 'override' is defined.")


def read_rules(sources: Iterable[RuleSource], collector: Collector | None = None) -> Collector:
    """Read rule files in order into one collector (a new one unless given)."""
    collector = collector or Collector()
    for source in sources:
        file = _File(source)
        try:
            documents = list(yaml.compose_all(source.text, Loader=_Loader))
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            line = mark.line + 1 if mark is not None else None
            column = mark.column + 1 if mark is not None else None
            raise RuleLoadError(
                f"YAML parse error: {error.problem or error}", source=source.name, line=line, column=column
            ) from None
        except yaml.YAMLError as error:
            raise RuleLoadError(f"YAML parse error: {error}", source=source.name) from None
        reader = _Reader(collector, file)
        for document in documents:
            if document is None or _is_null(document):
                continue
            if not isinstance(document, yaml.SequenceNode):
                raise file.where(document).error(
                    "Rules content is not yaml array of objects",
                    hint="a rules file is a YAML list of items: `- rule: ...`, `- macro: ...`, `- list: ...`",
                )
            for item in document.value:
                if not _is_null(item):
                    reader.read_item(item)
    return collector
