"""The parsed form of a filter: comparisons combined with and / or / not."""

from __future__ import annotations

from dataclasses import dataclass

from kubetrail.query.fields import Field


@dataclass(frozen=True)
class Value:
    """One value as written, with its column; `quoted` values are never read as keywords or patterns of `=`."""

    text: str
    column: int
    quoted: bool = False


@dataclass(frozen=True)
class Compare:
    """`field OP value` or `field [not] in (values…)`; `op` is one of = != ~ !~ < <= > >= in."""

    field: Field
    op: str
    values: tuple[Value, ...]
    column: int
    negated: bool = False


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Compare | And | Or | Not


@dataclass(frozen=True)
class Filter:
    """A parsed filter: `root` is None for the empty filter (every event)."""

    text: str
    root: Node | None

    def fields(self) -> set[str]:
        """The names of the fields the filter uses."""
        found: set[str] = set()
        stack: list[Node] = [self.root] if self.root is not None else []
        while stack:
            node = stack.pop()
            if isinstance(node, Compare):
                found.add(node.field.name)
            elif isinstance(node, Not):
                stack.append(node.item)
            else:
                stack.extend(node.items)
        return found
