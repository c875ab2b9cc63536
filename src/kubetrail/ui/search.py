"""The search box's filter text → a DuckDB WHERE clause over `events`, in the language of `kubetrail query`.

The UI and the command line accept the same text (docs/query.md); errors carry the offending token's column,
0-based here so that the page can put a caret under it.
"""

from __future__ import annotations

from kubetrail.errors import KubetrailError
from kubetrail.query import QueryError, where


class SearchError(KubetrailError):
    """Filter text that cannot be run: the message names the token, `column` is where it starts (0-based)."""

    def __init__(self, message: str, *, column: int = 0, hint: str = "") -> None:
        self.message = message
        self.column = column
        self.hint = hint
        super().__init__(f"column {column + 1}: {message}")


def filter_sql(text: str) -> tuple[str, list[object]]:
    """The WHERE clause and its parameters; `true` for empty text."""
    if not text.strip():
        return "true", []
    try:
        clause, params = where(text)
    except QueryError as error:
        raise SearchError(error.message, column=max(error.column - 1, 0), hint=error.hint) from None
    return clause, list(params)
