"""Errors of the query language and of running queries: each points at the offending token."""

from __future__ import annotations

from kubetrail.errors import KubetrailError


class QueryError(KubetrailError):
    """A filter that cannot be parsed or translated; `column` is the 1-based position of the offending token."""

    def __init__(self, message: str, *, column: int = 0, token: str = "", text: str = "", hint: str = "") -> None:
        self.message = message
        self.column = column
        self.token = token
        self.text = text
        self.hint = hint
        where = f"column {column}: " if column else ""
        near = f" (at {token!r})" if token else ""
        super().__init__(f"{where}{message}{near}")

    def caret(self) -> str:
        """The query text with a caret under the offending token, for terminals."""
        if not self.text or not self.column:
            return ""
        return f"{self.text}\n{' ' * (self.column - 1)}^"
