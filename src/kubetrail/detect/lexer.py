"""The condition language's scanner: Falco's tokens, read on demand at a cursor that tracks line and column.

Falco's grammar lexes by context (a bare value and a field name overlap), so the parser asks the
scanner for the token it expects next instead of consuming a fixed token stream.
"""

from __future__ import annotations

import re

from kubetrail.detect.nodes import Pos

IDENTIFIER = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*")
FIELD_NAME = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*(?:\.[a-zA-Z]+[a-zA-Z0-9_]*)+")
FIELD_ARG_BARE = re.compile(r"[^\]\[\"'\s]+")
HEX_NUMBER = re.compile(r"0[xX][0-9a-zA-Z]+")
NUMBER = re.compile(r"[+\-]?[0-9]+\.?[0-9]*(?:[eE][+\-][0-9]+)?")
BARE_STRING = re.compile(r"[^()\"'\s=,]+")
NOT_BLANK = re.compile(r"not\s+")

_BLANKS = frozenset(" \t\b\r\n")
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", " ": "\\", "\\": "\\", "/": "/"}


class ScanError(ValueError):
    """A malformed token; the parser turns it into a located syntax error."""

    def __init__(self, message: str, pos: Pos) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def unescape(body: str, delimiter: str, pos: Pos) -> str:
    """Resolve the escapes Falco accepts inside a quoted string (without its delimiters)."""
    if "\\" not in body:
        return body
    out: list[str] = []
    escaped = False
    for char in body:
        if not escaped:
            if char == "\\":
                escaped = True
            else:
                out.append(char)
            continue
        escaped = False
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char in "\"'":
            if char != delimiter:
                raise ScanError(f"invalid \\{char} escape in a {delimiter}-quoted string", pos)
            out.append(char)
        else:
            raise ScanError(f"unsupported string escape sequence: \\{char}", pos)
    return "".join(out)


class Scanner:
    """A cursor over a condition; every successful `take_*` advances it and records the token read."""

    __slots__ = ("column", "last", "line", "offset", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.offset = 0
        self.line = 1
        self.column = 1
        self.last = ""

    @property
    def pos(self) -> Pos:
        return Pos(self.offset, self.line, self.column)

    @property
    def at_end(self) -> bool:
        return self.offset >= len(self.text)

    def _advance(self, count: int) -> None:
        text = self.text
        for index in range(self.offset, self.offset + count):
            if text[index] == "\n":
                self.line += 1
                self.column = 1
            else:
                self.column += 1
        self.offset += count

    def blank(self) -> bool:
        """Skip blanks; True when there were any."""
        start = self.offset
        text = self.text
        end = start
        while end < len(text) and text[end] in _BLANKS:
            end += 1
        if end == start:
            return False
        self._advance(end - start)
        return True

    def take(self, literal: str) -> bool:
        """Consume `literal` when the text continues with it."""
        if self.text.startswith(literal, self.offset):
            self.last = literal
            self._advance(len(literal))
            return True
        return False

    def take_any(self, literals: tuple[str, ...]) -> str | None:
        """Consume the first of `literals` the text continues with."""
        for literal in literals:
            if self.take(literal):
                return literal
        return None

    def take_regex(self, pattern: re.Pattern[str]) -> str | None:
        """Consume the longest match of `pattern` at the cursor."""
        found = pattern.match(self.text, self.offset)
        if found is None or not found.group():
            return None
        self.last = found.group()
        self._advance(len(self.last))
        return self.last

    def peek(self, literal: str) -> bool:
        return self.text.startswith(literal, self.offset)

    def take_quoted(self) -> str | None:
        """Consume a single- or double-quoted string and return its unescaped content."""
        if self.at_end or self.text[self.offset] not in "\"'":
            return None
        delimiter = self.text[self.offset]
        start_pos = self.pos
        index = self.offset + 1
        text = self.text
        while index < len(text):
            char = text[index]
            if char == "\\":
                index += 2
                continue
            if char == delimiter:
                body = text[self.offset + 1 : index]
                value = unescape(body, delimiter, start_pos)
                self.last = text[self.offset : index + 1]
                self._advance(index + 1 - self.offset)
                return value
            index += 1
        raise ScanError(f"unterminated {delimiter}-quoted string", start_pos)
