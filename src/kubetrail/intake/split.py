"""Split a document too deeply nested for the recursive parser into its items, without recursion.

kube-apiserver decodes JSON nested up to 10,000 levels (`MAX_NESTING`), so a real audit event may be that deep.
The intake raises the interpreter's recursion limit to decode such events (`allow_nesting`). A document nested
deeper still (not something an apiserver sends) is split here, scanning only its structure, so that one bad item
costs only itself: each item is then decoded on its own and the one too deep is refused.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

MAX_NESTING = 10_000
"""The nesting kube-apiserver's JSON decoder accepts; every event up to it is decoded, deeper ones refused."""
_RECURSION_LIMIT = MAX_NESTING + 2_000
"""Python frames the decoders may use: the nesting plus room for the callers (a few hundred bytes of C stack
a level; a thread's 8 MiB stack holds far more)."""

_STRUCTURE = re.compile(rb'[\[\]{}",:]')
_STRING_REST = re.compile(rb'(?:[^"\\]|\\.)*"', re.DOTALL)
_BLANK = b" \t\r\n"


def allow_nesting() -> None:
    """Let the decoders reach MAX_NESTING levels (raises the interpreter's recursion limit, never lowers it)."""
    if sys.getrecursionlimit() < _RECURSION_LIMIT:
        sys.setrecursionlimit(_RECURSION_LIMIT)


@dataclass
class Split:
    """A JSON array's items, or an object's `kind`, `apiVersion` and `items`, as raw bytes."""

    is_array: bool
    kind: str = ""
    api_version: str = ""
    items: list[bytes] = field(default_factory=list)


def split_document(data: bytes) -> Split | None:
    """The top-level parts of `data` (an array, or an object with `items`), or None when it is not JSON."""
    start = len(data) - len(data.lstrip(_BLANK))
    if start >= len(data) or data[start : start + 1] not in (b"[", b"{"):
        return None
    split = Split(is_array=data[start : start + 1] == b"[")
    item_depth = 1 if split.is_array else 0
    depth = 0
    key = ""
    key_expected = False
    item_start = -1
    last_separator = start
    position = start
    while True:
        match = _STRUCTURE.search(data, position)
        if match is None:
            return None
        index = match.start()
        char = data[index : index + 1]
        position = index + 1
        in_items = item_depth > 0 and depth == item_depth
        if char == b'"':
            end = _STRING_REST.match(data, index + 1)
            if end is None:
                return None
            position = end.end()
            if in_items and item_start < 0:
                item_start = index
            elif depth == 1 and not split.is_array:
                text = data[index + 1 : position - 1].decode("utf-8", "replace")
                if key_expected:
                    key, key_expected = text, False
                elif key == "kind":
                    split.kind = text
                elif key == "apiVersion":
                    split.api_version = text
            continue
        if char in b"[{":
            if in_items and item_start < 0:
                item_start = index
            depth += 1
            if depth == 1 and char == b"{":
                key_expected = True
            elif depth == 2 and char == b"[" and not split.is_array and key == "items":
                item_depth = 2
            continue
        if char in b"]}":
            if in_items:
                _close_item(split, data, item_start, last_separator, index)
                item_start = -1
            depth -= 1
            if depth < 0:
                return None
            if depth == 1 and item_depth == 2 and not split.is_array:
                item_depth = -1  # the items array is closed
            if depth == 0:
                return split
            if item_depth > 0 and depth == item_depth and item_start >= 0:
                split.items.append(data[item_start:position])
                item_start = -1
                last_separator = position - 1
            continue
        if char == b",":
            if in_items:
                _close_item(split, data, item_start, last_separator, index)
                item_start = -1
                last_separator = index
            elif depth == 1 and not split.is_array:
                key_expected = True


def _close_item(split: Split, data: bytes, item_start: int, last_separator: int, index: int) -> None:
    """At a separator at item level: a scalar item runs from the last separator to here."""
    if item_start >= 0:
        split.items.append(data[item_start:index].rstrip(_BLANK))
        return
    text = data[last_separator + 1 : index].strip(_BLANK)
    if text:
        split.items.append(text)
