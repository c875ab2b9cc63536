"""Printing text that is not ours through rich: event values, rule and policy files, file names, warnings.

rich reads every `str` it renders — a `console.print` argument, a table cell or title, a progress
description — as markup (`[red]`, `[/x]`, `[link=…]`) and emoji codes (`:cat:`). Untrusted text that
contains them would crash the command (`MarkupError` on an unmatched closing tag such as Falco's
`jevt.value[/requestObject/spec/namespace]`), or silently lose, restyle or link part of itself.

So untrusted values always reach rich as `Text` (`plain`), which rich prints exactly as given, and a
line that mixes our own styling with them is assembled from pieces (`line`), never written as an
f-string of markup. A `str` holding only our own literals and numbers may still use markup.
"""

from __future__ import annotations

from rich.style import StyleType
from rich.text import Text

TITLE_STYLE = "table.title"
"""The style rich gives a `str` table title; a `Text` title must carry it itself."""


def plain(value: object, style: StyleType = "") -> Text:
    """`value` as literal text, optionally in `style`: never read as markup or emoji codes."""
    return Text(str(value), style=style)


def title(value: object) -> Text:
    """A table title holding untrusted text, styled as rich styles a `str` title."""
    return plain(value, TITLE_STYLE)


def line(*parts: str | Text | tuple[str, StyleType]) -> Text:
    """One line from literal pieces: a `str` is printed as it is (not as markup), a `(text, style)` pair in
    that style, a `Text` as it is. E.g. `line("policy: ", (source, "bold"), f"  ({count} rules)")`."""
    return Text.assemble(*parts)
