"""Parse a policy file's YAML (or JSON) into plain values while remembering each field's line.

The values follow what kube-apiserver reads: a file whose first non-space character is `{`
is JSON (strict, as Go's decoder); anything else is the first YAML document, with plain
scalars resolved by the YAML 1.1 rules of the Go YAML library the apiserver uses (so `y`
is a boolean and `1:30` a string) and merge keys (`<<`) applied.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

FieldPath = tuple[str | int, ...]

_SCALAR_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_SafeLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_IMPLICIT_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "bool", "int", "float", "null", "timestamp", "value")
)
_GO_YAML_WORDS: dict[str, Any] = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
_GO_INT = re.compile(r"[-+]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_GO_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INT64_RANGE = range(-(1 << 63), 1 << 64)


class SourceSyntaxError(ValueError):
    """The text is not YAML or JSON; carries the 1-based line and column."""

    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        self.line = line
        self.column = column
        super().__init__(message)


@dataclass
class DuplicateKey:
    """A key given twice in one mapping (the apiserver keeps the last value and warns)."""

    path: FieldPath
    line: int


@dataclass
class SourceDocument:
    """A parsed document: its value, a line per field path, and duplicate keys seen."""

    value: Any
    lines: dict[FieldPath, int] = field(default_factory=dict)
    duplicates: list[DuplicateKey] = field(default_factory=list)
    extra_documents: int = 0
    is_json: bool = False

    def line_of(self, path: FieldPath) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


def format_field_path(path: FieldPath) -> str:
    """Render a path as the apiserver does: `rules[0].resources[1].group`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def resolve_plain_scalar(text: str) -> Any:
    """Resolve an unquoted YAML scalar as the Go YAML library (v2, YAML 1.1) does."""
    if text in _GO_YAML_WORDS:
        return _GO_YAML_WORDS[text]
    first = text[0]
    if first == "." and _GO_YAML_FLOAT.fullmatch(text):
        return float(text)
    if not (first.isdigit() or first in "+-"):
        return text
    plain = text.replace("_", "")
    if _GO_INT.fullmatch(plain):
        sign = -1 if plain.startswith("-") else 1
        digits = plain.lstrip("+-")
        base = 10
        if len(digits) > 1 and digits[0] == "0":
            prefix = digits[1].lower()
            base, digits = {"x": (16, digits[2:]), "o": (8, digits[2:]), "b": (2, digits[2:])}.get(prefix, (8, digits))
        number = sign * int(digits, base)
        if number in _INT64_RANGE:
            return number
    if _GO_YAML_FLOAT.fullmatch(plain):
        return float(plain)
    return text


def _build(node: yaml.Node, path: FieldPath, document: SourceDocument) -> Any:
    document.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        _SCALAR_CONSTRUCTOR.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _build_scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            key_text = _key_text(key)
            child = (*path, key_text)
            if key_text in mapping:
                document.duplicates.append(DuplicateKey(child, key_node.start_mark.line + 1))
                document.lines[child] = key_node.start_mark.line + 1
            else:
                document.lines.setdefault(child, key_node.start_mark.line + 1)
            mapping[key_text] = _build(value_node, child, document)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, index), document) for index, item in enumerate(node.value)]
    return _build_scalar(node)


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


def _build_scalar(node: yaml.Node) -> Any:
    if node.tag in _IMPLICIT_TAGS:
        if getattr(node, "style", None) in (None, ""):
            return resolve_plain_scalar(str(node.value))
        return str(node.value)
    if node.tag == "tag:yaml.org,2002:binary":
        return str(node.value)
    return _SCALAR_CONSTRUCTOR.construct_object(node, deep=True)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON literal {name}")


def _parse_json(text: str) -> SourceDocument:
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise SourceSyntaxError(f"not valid JSON: {error.msg}", error.lineno, error.colno) from None
    except ValueError as error:
        raise SourceSyntaxError(f"not valid JSON: {error}", None, None) from None
    document = SourceDocument(value=value, is_json=True)
    try:
        node = yaml.compose(text.replace("\t", " "), Loader=_SafeLoader)
    except yaml.YAMLError:
        return document
    if node is not None:
        located = SourceDocument(value=None)
        _build(node, (), located)
        document.lines = located.lines
        document.duplicates = located.duplicates
    return document


def parse_source(text: str) -> SourceDocument:
    """Parse a policy file: JSON when it starts with `{`, else its first YAML document."""
    if text.lstrip().startswith("{"):
        return _parse_json(text)
    try:
        nodes = list(yaml.compose_all(text, Loader=_SafeLoader))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        problem = error.problem or error.context or "invalid YAML"
        raise SourceSyntaxError(f"not valid YAML or JSON: {problem}", line, column) from None
    except (yaml.YAMLError, ValueError, TypeError) as error:
        raise SourceSyntaxError(f"not valid YAML or JSON: {error}", None, None) from None
    if not nodes:
        return SourceDocument(value=None)
    document = SourceDocument(value=None, extra_documents=len(nodes) - 1)
    try:
        document.value = _build(nodes[0], (), document)
    except (yaml.YAMLError, ValueError, TypeError) as error:
        raise SourceSyntaxError(f"not valid YAML or JSON: {error}", None, None) from None
    return document
