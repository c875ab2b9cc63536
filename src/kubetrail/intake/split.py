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

_STRUCTURE = re.compile(rb'[\[{]+|[\]}]+|[",]')
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
    scan = _Scan(data, Split(is_array=data[start : start + 1] == b"["), start)
    return scan.run()


class _Scan:
    """The state of one structural scan: only depths 0 to 2 decide anything; deeper runs of brackets are
    counted in one step, so a bomb of a million `[` costs two regular-expression matches."""

    def __init__(self, data: bytes, split: Split, start: int) -> None:
        self.data = data
        self.split = split
        self.item_depth = 1 if split.is_array else 0
        self.depth = 0
        self.key = ""
        self.key_expected = False
        self.item_start = -1
        self.last_separator = start
        self.position = start

    @property
    def in_items(self) -> bool:
        return self.item_depth > 0 and self.depth == self.item_depth

    def run(self) -> Split | None:
        data = self.data
        while True:
            match = _STRUCTURE.search(data, self.position)
            if match is None:
                return None
            index, end = match.span()
            char = data[index : index + 1]
            self.position = end
            if char == b'"':
                if not self._string(index):
                    return None
            elif char in b"[{":
                self._open(index, end)
            elif char in b"]}":
                done = self._close(index, end)
                if done is not None:
                    return self.split if done else None
            elif char == b",":
                self._comma(index)

    def _string(self, index: int) -> bool:
        data = self.data
        end = _STRING_REST.match(data, index + 1)
        if end is None:
            return False
        self.position = end.end()
        if self.in_items and self.item_start < 0:
            self.item_start = index
        elif self.depth == 1 and not self.split.is_array:
            text = data[index + 1 : self.position - 1].decode("utf-8", "replace")
            if self.key_expected:
                self.key, self.key_expected = text, False
            elif self.key == "kind":
                self.split.kind = text
            elif self.key == "apiVersion":
                self.split.api_version = text
        return True

    def _open(self, index: int, end: int) -> None:
        for offset in range(end - index):
            if self.depth > 2:
                self.depth += end - index - offset
                return
            char = self.data[index + offset : index + offset + 1]
            if self.in_items and self.item_start < 0:
                self.item_start = index + offset
            self.depth += 1
            if self.depth == 1 and char == b"{":
                self.key_expected = True
            elif self.depth == 2 and char == b"[" and not self.split.is_array and self.key == "items":
                self.item_depth = 2
                self.last_separator = index + offset

    def _close(self, index: int, end: int) -> bool | None:
        """None to go on; True when the document ended; False when it closed more than it opened."""
        offset = 0
        while offset < end - index:
            if self.depth > 3:
                step = min(end - index - offset, self.depth - 3)
                self.depth -= step
                offset += step
                continue
            at = index + offset
            if self.in_items:
                _close_item(self.split, self.data, self.item_start, self.last_separator, at)
                self.item_start = -1
            self.depth -= 1
            offset += 1
            if self.depth < 0:
                return False
            if self.depth == 1 and self.item_depth == 2 and not self.split.is_array:
                self.item_depth = -1  # the items array is closed
            if self.depth == 0:
                return True
            if self.item_depth > 0 and self.depth == self.item_depth and self.item_start >= 0:
                self.split.items.append(self.data[self.item_start : at + 1])
                self.item_start = -1
                self.last_separator = at
        return None

    def _comma(self, index: int) -> None:
        if self.in_items:
            _close_item(self.split, self.data, self.item_start, self.last_separator, index)
            self.item_start = -1
            self.last_separator = index
        elif self.depth == 1 and not self.split.is_array:
            self.key_expected = True


def _close_item(split: Split, data: bytes, item_start: int, last_separator: int, index: int) -> None:
    """At a separator at item level: a scalar item runs from the last separator to here."""
    if item_start >= 0:
        split.items.append(data[item_start:index].rstrip(_BLANK))
        return
    text = data[last_separator + 1 : index].strip(_BLANK)
    if text:
        split.items.append(text)
