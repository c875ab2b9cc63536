"""The condition language's syntax tree; every node keeps its position in the condition text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pos:
    """A position in a condition: character offset and 1-based line and column."""

    offset: int = 0
    line: int = 1
    column: int = 1


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A field, with its optional `[argument]` (an index, a key or a JSON pointer)."""

    name: str
    arg: str | None
    pos: Pos

    @property
    def text(self) -> str:
        """The field as written in rules and output keys: `ka.uri.param[command]`."""
        return self.name if self.arg is None else f"{self.name}[{self.arg}]"


@dataclass(frozen=True, slots=True)
class Item:
    """One value of a comparison or of a list; `bare` when unquoted (and so maybe a list name)."""

    text: str
    bare: bool
    pos: Pos


@dataclass(frozen=True, slots=True)
class ValueList:
    """A parenthesised list of values `(a, "b c")`, or a bare list name after `in`."""

    items: tuple[Item, ...]
    pos: Pos
    parenthesised: bool = True


@dataclass(frozen=True, slots=True)
class Check:
    """A field compared with an operator; `value` is None for `exists`."""

    field: FieldRef
    op: str
    value: Item | ValueList | None
    pos: Pos


@dataclass(frozen=True, slots=True)
class MacroRef:
    """A bare identifier: a reference to a macro."""

    name: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Not:
    child: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Expr, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Expr, ...]
    pos: Pos


Expr = And | Or | Not | Check | MacroRef

UNARY_OPERATORS = ("exists",)
NUMERIC_OPERATORS = ("<=", "<", ">=", ">")
STRING_OPERATORS = (
    "==",
    "=",
    "!=",
    "glob",
    "iglob",
    "contains",
    "icontains",
    "bcontains",
    "startswith",
    "bstartswith",
    "endswith",
    "regex",
)
LIST_OPERATORS = ("intersects", "in", "pmatch")
ALL_OPERATORS = UNARY_OPERATORS + NUMERIC_OPERATORS + STRING_OPERATORS + LIST_OPERATORS
