"""Tokens of the filter language, each with its 1-based column so errors can point at it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from kubetrail.query.errors import QueryError


class Kind(Enum):
    WORD = "word"
    STRING = "string"
    OP = "operator"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    END = "end of the filter"


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str
    column: int

    def keyword(self) -> str:
        """The lower-cased text of an unquoted word (keywords `and`, `or`, `not`, `in` are case-insensitive)."""
        return self.text.lower() if self.kind is Kind.WORD else ""


OPERATORS = ("!=", "!~", "<=", ">=", "=", "~", "<", ">")
_SINGLE = {"(": Kind.LPAREN, ")": Kind.RPAREN, ",": Kind.COMMA}
_WORD_STOP = frozenset(" \t\r\n(),=!~<>\"'")


def tokenize(text: str) -> list[Token]:
    """Split a filter into tokens; quoted strings take `\\"`, `\\'` and `\\\\` escapes."""
    tokens: list[Token] = []
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char.isspace():
            index += 1
            continue
        column = index + 1
        if char in _SINGLE:
            tokens.append(Token(_SINGLE[char], char, column))
            index += 1
            continue
        operator = next((op for op in OPERATORS if text.startswith(op, index)), None)
        if operator is not None:
            tokens.append(Token(Kind.OP, operator, column))
            index += len(operator)
            continue
        if char in "\"'":
            value, index = _quoted(text, index)
            tokens.append(Token(Kind.STRING, value, column))
            continue
        if char == "!":
            raise QueryError("'!' must be followed by '=' or '~'", column=column, token="!", text=text)
        end = index
        while end < length and text[end] not in _WORD_STOP:
            end += 1
        tokens.append(Token(Kind.WORD, text[index:end], column))
        index = end
    tokens.append(Token(Kind.END, "", length + 1))
    return tokens


def _quoted(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    parts: list[str] = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in (quote, "\\"):
            parts.append(text[index + 1])
            index += 2
            continue
        if char == quote:
            return "".join(parts), index + 1
        parts.append(char)
        index += 1
    raise QueryError(
        "unterminated quoted string", column=start + 1, token=text[start:], text=text, hint=f"close it with {quote}"
    )
