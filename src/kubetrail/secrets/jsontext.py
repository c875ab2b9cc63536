"""Where each string value sits in a JSON text, so values can be replaced with every other byte unchanged.

`string_spans` walks the text once and yields each string value's path and the offsets of its content
(between the quotes); `raw_offsets` maps offsets in the decoded value back to the text, through escapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

Path = tuple[str | int, ...]

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+', re.DOTALL)
_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|.)", re.DOTALL)


class _Frame:
    __slots__ = ("expecting_key", "index", "is_object", "key")

    def __init__(self, is_object: bool) -> None:
        self.is_object = is_object
        self.key: str | int = 0
        self.index = 0
        self.expecting_key = is_object


def string_spans(text: str, start: int = 0, end: int | None = None) -> Iterator[tuple[Path, int, int]]:
    """(path, content start, content end) of every string value (not key) in the JSON text."""
    stack: list[_Frame] = []
    path: list[str | int] = []
    for match in _TOKEN.finditer(text, start, len(text) if end is None else end):
        token = match.group()
        first = token[0]
        top = stack[-1] if stack else None
        if first == '"':
            if top is not None and top.is_object and top.expecting_key:
                top.key = json.loads(token)
                top.expecting_key = False
                continue
            here = (*path, top.key) if top is not None else tuple(path)
            yield here, match.start() + 1, match.end() - 1
        elif first in "{[":
            if top is not None:
                path.append(top.key)
            frame = _Frame(first == "{")
            if not frame.is_object:
                frame.key = 0
            stack.append(frame)
        elif first in "}]":
            stack.pop()
            if stack:
                path.pop()
        elif first == "," and top is not None:
            if top.is_object:
                top.expecting_key = True
            else:
                top.index += 1
                top.key = top.index


def raw_offsets(raw: str) -> list[int]:
    """For a JSON string's raw content, the raw offset of each decoded character (plus one past the end)."""
    if "\\" not in raw:
        return list(range(len(raw) + 1))
    offsets: list[int] = []
    position = 0
    while position < len(raw):
        if raw[position] == "\\":
            match = _ESCAPE.match(raw, position)
            assert match is not None
            step = match.end() - position
            high = raw[position + 1] == "u" and 0xD800 <= int(raw[position + 2 : position + 6], 16) < 0xDC00
            if high and raw.startswith("\\u", position + 6):
                step = 12  # a surrogate pair decodes to one character
            offsets.append(position)
            position += step
        else:
            offsets.append(position)
            position += 1
    offsets.append(position)
    return offsets


def format_path(path: Path) -> str:
    """`requestObject.data["tls.key"]`, `responseObject.items[3].data.password`."""
    parts: list[str] = []
    for item in path:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", item):
            parts.append(f".{item}" if parts else item)
        else:
            parts.append(f"[{json.dumps(item)}]")
    return "".join(parts)
