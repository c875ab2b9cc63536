"""Filter → Spark SQL WHERE clause over the lake's `events` view, values always as named `:pN` parameters.

The same meaning as the DuckDB translator (`kubetrail.query.translate`), spelled in Spark SQL: GLOB patterns
become anchored Java regular expressions (`RLIKE`), list predicates use `exists`/`arrays_overlap`, JSON
pointers become JSONPath for `get_json_object`. Comparisons on missing values are false and `!=`, `!~`,
`not in` and `not` are their exact complements, as in DuckDB. Values reach Spark only through `args=`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from kubetrail.query.nodes import Compare, Filter
from kubetrail.query.sqlbase import NUMBER, ORDERED, SqlTranslator

_NEVER = "(?!)"
# A dotted IPv4 address as an integer (NULL when the text is not one), for CIDR ranges.
_IPV4_INT = (
    "(try_cast(split_part({a}, '.', 1) AS BIGINT) * 16777216 + try_cast(split_part({a}, '.', 2) AS BIGINT) * 65536"
    " + try_cast(split_part({a}, '.', 3) AS BIGINT) * 256 + try_cast(split_part({a}, '.', 4) AS BIGINT))"
)
_V6_PART = (
    "CASE WHEN split_part({a}, '::', {n}) = '' THEN CAST(array() AS ARRAY<STRING>) "
    "ELSE split(split_part({a}, '::', {n}), ':') END"
)
_V6_HEAD = _V6_PART.replace("{n}", "1")
_V6_TAIL = _V6_PART.replace("{n}", "2")
# A textual IPv6 address as 32 lower-case hex digits (`::` expanded), which compare in address order.
_IPV6_HEX = (
    f"array_join(transform(concat({_V6_HEAD}, array_repeat('0', 8 - size({_V6_HEAD}) - size({_V6_TAIL})), "
    f"{_V6_TAIL}), g -> lpad(lower(g), 4, '0')), '')"
)

ORDERS = {
    "asc": "`time` ASC NULLS LAST, `stage_time` ASC NULLS LAST, `audit_id` ASC NULLS LAST",
    "desc": "`time` DESC NULLS LAST, `stage_time` DESC NULLS LAST, `audit_id` DESC NULLS LAST",
    "none": "",
}


def _literal(char: str) -> str:
    return char if char.isascii() and char.isalnum() else f"\\x{{{ord(char):x}}}"


def glob_to_regex(pattern: str) -> str:
    """A GLOB pattern as DuckDB reads it (`*`, `?`, `[a-z]`, `[!a]`, `\\` escapes) → an anchored Java regex.

    A pattern DuckDB never matches (an unclosed `[`, a trailing `\\`) becomes a regex that never matches.
    """
    out = ["(?s)^"]
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "\\":
            if index + 1 == len(pattern):
                return _NEVER
            index += 1
            out.append(_literal(pattern[index]))
        elif char == "[":
            end = index + 1
            negate = end < len(pattern) and pattern[end] == "!"
            end += negate
            start = end
            if end < len(pattern) and pattern[end] == "]":
                end += 1
            end = pattern.find("]", end)
            if end < 0:
                return _NEVER
            out.append(_char_class(pattern[start:end], negate))
            index = end
        else:
            out.append(_literal(char))
        index += 1
    out.append("\\z")
    return "".join(out)


def _char_class(content: str, negate: bool) -> str:
    items: list[str] = []
    index = 0
    while index < len(content):
        if index + 2 < len(content) and content[index + 1] == "-":
            items.append(f"{_literal(content[index])}-{_literal(content[index + 2])}")
            index += 3
        else:
            items.append(_literal(content[index]))
            index += 1
    return "[" + ("^" if negate else "") + "".join(items) + "]"


def pointer_to_jsonpath(pointer: str) -> str | None:
    """`/requestObject/spec/containers/0/image` → `$['requestObject']['spec']['containers'][0]['image']`.

    None when a key cannot be written in Spark's JSONPath (it holds `'` or `]`).
    """
    path = ["$"]
    for token in pointer.split("/")[1:]:
        key = token.replace("~1", "/").replace("~0", "~")
        if key.isdigit():
            path.append(f"[{int(key)}]")
        elif "'" in key or "]" in key:
            return None
        else:
            path.append(f"['{key}']")
    return "".join(path)


class _SparkTranslator(SqlTranslator):
    """Spark SQL's spelling: backquoted columns, named `:pN` arguments, RLIKE, higher-order array functions."""

    def __init__(self, text: str, now: datetime | None, prefix: str) -> None:
        super().__init__(text, now)
        self.prefix = prefix
        self.args: dict[str, object] = {}

    def quote(self, column: str) -> str:
        return f"`{column}`"

    def param(self, value: object) -> str:
        name = f"{self.prefix}{len(self.args)}"
        self.args[name] = value
        return f":{name}"

    def params(self, values: list[str]) -> str:
        return ", ".join(self.param(value) for value in values)

    def glob(self, expression: str, pattern: str) -> str:
        return f"{expression} RLIKE {self.param(glob_to_regex(pattern))}"

    def any_glob(self, column: str, pattern: str) -> str:
        return f"exists({column}, v -> v RLIKE {self.param(glob_to_regex(pattern))})"

    def has_any(self, column: str, values: list[str]) -> str:
        return f"arrays_overlap({column}, array({self.params(values)}))"

    def ipv4_in(self, column: str, first: int, last: int) -> str:
        expression = _IPV4_INT.format(a="a")
        return f"exists({column}, a -> {expression} BETWEEN {self.param(first)} AND {self.param(last)})"

    def ipv6_in(self, column: str, first_hex: str, last_hex: str) -> str:
        expression = _IPV6_HEX.format(a="a")
        return (
            f"exists({column}, a -> instr(a, ':') > 0 AND instr(a, '.') = 0 AND "
            f"{expression} BETWEEN {self.param(first_hex)} AND {self.param(last_hex)})"
        )

    def ago(self, duration: timedelta) -> str:
        return f"timestampadd(SECOND, {self.param(-int(duration.total_seconds()))}, current_timestamp())"

    def json(self, node: Compare) -> str:
        pointer = node.field.column
        path = pointer_to_jsonpath(pointer) if pointer.startswith("/") else None
        if path is None:
            raise self.error(
                "a JSON field is event./POINTER (keys without ' or ])",
                column=node.column,
                hint="e.g. event./requestObject/spec/hostNetwork",
            )
        extracted = f"get_json_object(`event`, {self.param(path)})"
        if node.op == "in":
            return f"({extracted} IN ({self.params([value.text for value in node.values])}))"
        value = node.values[0]
        if node.op in ORDERED and NUMBER.match(value.text):
            return f"(try_cast({extracted} AS DOUBLE) {node.op} {self.param(float(value.text))})"
        if node.op == "~":
            return f"({extracted} RLIKE {self.param(glob_to_regex(value.text))})"
        if node.op == "=" and value.text == "":
            return f"({extracted} IS NULL)"
        return f"({extracted} {node.op} {self.param(value.text)})"


def to_spark_sql(filter: Filter, *, now: datetime | None = None, prefix: str = "p") -> tuple[str, dict[str, object]]:
    """A Spark SQL WHERE clause (without `WHERE`) and its named arguments for `spark.sql(sql, args=…)`;
    `since=1h` counts back from `now` (default: Spark's current time). `prefix` keeps the names of several
    clauses apart when they are combined."""
    if filter.root is None:
        return "true", {}
    if not re.fullmatch(r"[a-z]+", prefix):
        raise ValueError(f"argument prefix {prefix!r} is not lower-case letters")
    translator = _SparkTranslator(filter.text, now, prefix)
    return translator.node(filter.root), translator.args
