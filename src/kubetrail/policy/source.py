"""Parse a policy file's YAML (or JSON) into plain values while remembering each field's line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

FieldPath = tuple[str | int, ...]

_SCALAR_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_KEEP_AS_TEXT = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}
_SafeLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


def _build(node: yaml.Node, path: FieldPath, document: SourceDocument) -> Any:
    document.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _build_scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            key_text = key if isinstance(key, str) else str(key)
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


def _build_scalar(node: yaml.Node) -> Any:
    if node.tag in _KEEP_AS_TEXT:
        return str(node.value)
    return _SCALAR_CONSTRUCTOR.construct_object(node, deep=True)


def parse_source(text: str) -> SourceDocument:
    """Parse the first YAML/JSON document of `text` (later documents are counted, not read)."""
    try:
        nodes = list(yaml.compose_all(text, Loader=_SafeLoader))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        problem = error.problem or error.context or "invalid YAML"
        raise SourceSyntaxError(f"not valid YAML or JSON: {problem}", line, column) from None
    except yaml.YAMLError as error:
        raise SourceSyntaxError(f"not valid YAML or JSON: {error}", None, None) from None
    nodes = [node for node in nodes if node is not None]
    if not nodes:
        return SourceDocument(value=None)
    document = SourceDocument(value=None, extra_documents=len(nodes) - 1)
    document.value = _build(nodes[0], (), document)
    return document
