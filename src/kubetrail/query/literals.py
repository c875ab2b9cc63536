"""Literal bytes a raw JSON line must contain to match a filter — the pre-filter of reading files in place.

Each top-level `=` / `in` term on a text, list or code field names values, and a line holding a matching
event holds one of them as written: a JSON string `"secrets"`, a number `403`. Only values that every JSON
encoder writes verbatim qualify (letters, digits and `._:@ +=-`; never `"`, `\\` or `/`), and the only other
way to write their characters is a `\\u00XX` escape, so a line containing `ESCAPE` is never skipped on the
strength of these needles. A line that fails `needed` cannot match; one that passes must still be decoded
and the filter evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubetrail.query.fields import FieldKind
from kubetrail.query.nodes import And, Compare, Filter, Node

ESCAPE = b"\\u00"
"""How a JSON string writes an ASCII character by its code (`\\u0073` is `s`); a line holding it is decoded."""

VERBATIM = re.compile(r"^[A-Za-z0-9._:@ +=-]+$")
"""Values JSON encoders (Go's, Python's, msgspec's, …) always write as they are inside a string."""


@dataclass(frozen=True)
class Term:
    """A line that can match holds at least one of `needles` (unless it holds an escape)."""

    needles: tuple[bytes, ...]

    def found_in(self, line: bytes) -> bool:
        return any(needle in line for needle in self.needles)


def terms(filter: Filter) -> list[Term]:
    """The needle sets of the filter's top-level terms that imply one; [] when none does."""
    root = filter.root
    items: tuple[Node, ...] = root.items if isinstance(root, And) else (root,) if root is not None else ()
    found: list[Term] = []
    for item in items:
        term = _term(item)
        if term is not None and term not in found:
            found.append(term)
    return found


def _term(item: Node) -> Term | None:
    if not isinstance(item, Compare) or item.negated or item.op not in ("=", "in"):
        return None
    kind = item.field.kind
    if kind not in (FieldKind.TEXT, FieldKind.INT, FieldKind.LIST) or item.field.name == "cluster":
        return None
    texts = [value.text for value in item.values]
    if not texts or not all(VERBATIM.match(text) for text in texts):
        return None
    if kind is FieldKind.INT:
        if not all(text.isdigit() for text in texts):
            return None
        # a JSON number is written with its digits (a leading zero is not JSON), never inside a string
        return Term(tuple(dict.fromkeys(str(int(text)).encode() for text in texts)))
    return Term(tuple(dict.fromkeys(f'"{text}"'.encode() for text in texts)))


def needed(line: bytes, found: list[Term]) -> bool:
    """Whether a line may match a filter with these terms: it holds an escape, or a needle of every term."""
    return ESCAPE in line or all(term.found_in(line) for term in found)
