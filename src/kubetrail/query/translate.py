"""Filter → DuckDB WHERE clause over the store's `events` view, values always as `?` parameters.

The filter's meaning lives in `kubetrail.query.sqlbase`; this module spells it in DuckDB. Comparisons on a
missing value (a cluster-scoped object's namespace, an event without a response code) are false, and `!=`,
`!~`, `not in` and `not` are their exact complements, so `ns!=prod` keeps cluster-scoped events.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from kubetrail.query.nodes import Compare, Filter
from kubetrail.query.sqlbase import NUMBER, ORDERED, SqlTranslator

# A dotted IPv4 address as an integer (NULL when the text is not one), for CIDR ranges.
_IPV4_INT = (
    "(TRY_CAST(split_part({a}, '.', 1) AS BIGINT) * 16777216 + TRY_CAST(split_part({a}, '.', 2) AS BIGINT) * 65536"
    " + TRY_CAST(split_part({a}, '.', 3) AS BIGINT) * 256 + TRY_CAST(split_part({a}, '.', 4) AS BIGINT))"
)
_V6_HEAD = (
    "CASE WHEN split_part({a}, '::', 1) = '' THEN []::VARCHAR[] ELSE string_split(split_part({a}, '::', 1), ':') END"
)
_V6_TAIL = (
    "CASE WHEN split_part({a}, '::', 2) = '' THEN []::VARCHAR[] ELSE string_split(split_part({a}, '::', 2), ':') END"
)
# A textual IPv6 address as 32 lower-case hex digits (`::` expanded), which compare in address order.
_IPV6_HEX = (
    f"array_to_string(list_transform(list_concat({_V6_HEAD}, list_transform(range(8 - len({_V6_HEAD}) - "
    f"len({_V6_TAIL})), lambda z: '0'), {_V6_TAIL}), lambda g: lpad(lower(g), 4, '0')), '')"
)


class _DuckDBTranslator(SqlTranslator):
    """DuckDB's spelling: `"column"`, positional `?` parameters, GLOB, list functions."""

    def __init__(self, text: str, now: datetime | None) -> None:
        super().__init__(text, now)
        self.params: list[object] = []

    def quote(self, column: str) -> str:
        return f'"{column}"'

    def param(self, value: object) -> str:
        self.params.append(value)
        return "?"

    def glob(self, expression: str, pattern: str) -> str:
        return f"{expression} GLOB {self.param(pattern)}"

    def any_glob(self, column: str, pattern: str) -> str:
        return f"(len(list_filter({column}, lambda v: v GLOB {self.param(pattern)})) > 0)"

    def has_any(self, column: str, values: list[str]) -> str:
        return f"list_has_any({column}, {self.param(values)}::VARCHAR[])"

    def ipv4_in(self, column: str, first: int, last: int) -> str:
        expression = _IPV4_INT.format(a="a")
        return (
            f"(len(list_filter({column}, lambda a: {expression} BETWEEN {self.param(first)} AND "
            f"{self.param(last)})) > 0)"
        )

    def ipv6_in(self, column: str, first_hex: str, last_hex: str) -> str:
        expression = _IPV6_HEX.format(a="a")
        return (
            f"(len(list_filter({column}, lambda a: contains(a, ':') AND NOT contains(a, '.') AND "
            f"{expression} BETWEEN {self.param(first_hex)} AND {self.param(last_hex)})) > 0)"
        )

    def ago(self, duration: timedelta) -> str:
        return f"current_timestamp - {self.param(duration)}"

    def text_in(self, column: str, node: Compare) -> str | None:
        return f"({column} IN ({', '.join(self.param(value.text) for value in node.values)}))"

    def json(self, node: Compare) -> str:
        pointer = node.field.column
        if not pointer.startswith("/"):
            raise self.error(
                "a JSON field is event./POINTER", column=node.column, hint="e.g. event./requestObject/spec/hostNetwork"
            )
        extracted = f"json_extract_string(event, {self.param(pointer)})"
        if node.op == "in":
            values = [value.text for value in node.values]
            return f"({extracted} IN (SELECT unnest({self.param(values)}::VARCHAR[])))"
        value = node.values[0]
        if node.op in ORDERED and NUMBER.match(value.text):
            return f"(TRY_CAST({extracted} AS DOUBLE) {node.op} {self.param(float(value.text))})"
        if node.op == "~":
            return f"({extracted} GLOB {self.param(value.text)})"
        if node.op == "=" and value.text == "":
            return f"({extracted} IS NULL)"
        return f"({extracted} {node.op} {self.param(value.text)})"


def to_sql(filter: Filter, *, now: datetime | None = None) -> tuple[str, list[object]]:
    """A WHERE clause (without `WHERE`) and its parameters; `since=1h` counts back from `now` (default: the
    database's current time)."""
    if filter.root is None:
        return "true", []
    translator = _DuckDBTranslator(filter.text, now)
    return translator.node(filter.root), translator.params
