"""The search box's filter text → a DuckDB WHERE clause over `events`.

`kubetrail.query` (the filter language of `kubetrail query`) is used when it is installed, so the UI and the
command line accept the same text; otherwise a small subset is understood: `FIELD=VALUE`, `FIELD!=VALUE`,
`FIELD~GLOB` and, for `code`, `<`, `<=`, `>`, `>=`. Errors carry the offending token's column.
"""

from __future__ import annotations

import re
from typing import Any

from kubetrail.errors import KubetrailError

FIELDS = {
    "user": '"user"',
    "verb": "verb",
    "resource": "resource",
    "subresource": "subresource",
    "ns": "namespace",
    "namespace": "namespace",
    "name": "name",
    "code": "response_code",
    "cluster": "cluster",
    "stage": "stage",
    "level": "level",
    "ip": "source_ip",
    "ua": "user_agent",
    "decision": "authz_decision",
    "auditid": "audit_id",
}
_TOKEN = re.compile(r'(\w+)(!=|>=|<=|=|~|<|>)("(?:[^"\\]|\\.)*"|\S*)')


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
        from kubetrail.query import QueryError, where
    except ImportError:
        return _fallback(text)
    try:
        clause, params = where(text)
    except QueryError as error:
        raise SearchError(error.message, column=max(error.column - 1, 0), hint=error.hint) from None
    return clause, list(params)


def _fallback(text: str) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[Any] = []
    for match in re.finditer(r"\S+", text):
        token = _TOKEN.fullmatch(match.group())
        if token is None or token.group(1).lower() not in FIELDS:
            raise SearchError(
                f"cannot read {match.group()!r}",
                column=match.start(),
                hint=f"write FIELD=VALUE with FIELD one of {', '.join(sorted(FIELDS))}",
            )
        name, operator, value = token.group(1).lower(), token.group(2), token.group(3)
        if value.startswith('"'):
            value = value[1:-1].replace('\\"', '"')
        column = FIELDS[name]
        if name == "code":
            if not value.isdigit() or operator == "~":
                raise SearchError(f"{value!r} is not a status code", column=match.start() + len(name) + len(operator))
            clauses.append(f"{column} {'<>' if operator == '!=' else operator} ?")
            params.append(int(value))
        elif operator in ("=", "!="):
            clauses.append(f"{column} {'=' if operator == '=' else 'IS DISTINCT FROM'} ?")
            params.append(value)
        elif operator == "~":
            clauses.append(f"{column} GLOB ?")
            params.append(value)
        else:
            raise SearchError(f"{operator} only compares codes", column=match.start() + len(name))
    return " AND ".join(clauses), params
