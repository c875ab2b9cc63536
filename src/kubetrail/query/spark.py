"""Filter → Spark SQL WHERE clause over the lake's `events` view, values always as named `:pN` parameters.

The same meaning as the DuckDB translator (`kubetrail.query.translate`), spelled in Spark SQL: GLOB patterns
become anchored Java regular expressions (`RLIKE`), list predicates use `exists`/`arrays_overlap`, JSON
pointers become JSONPath for `get_json_object`. Comparisons on missing values are false and `!=`, `!~`,
`not in` and `not` are their exact complements, as in DuckDB. Values reach Spark only through `args=`.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime

from kubetrail.query.errors import QueryError
from kubetrail.query.fields import FieldKind
from kubetrail.query.nodes import And, Compare, Filter, Node, Not, Or, Value
from kubetrail.query.values import parse_duration, parse_time

_CODE_CLASS = re.compile(r"^([1-5])xx$", re.IGNORECASE)
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
_ORDERED = frozenset({"<", "<=", ">", ">="})
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


class _Translator:
    def __init__(self, text: str, now: datetime | None, prefix: str) -> None:
        self.text = text
        self.now = now
        self.prefix = prefix
        self.args: dict[str, object] = {}

    def error(self, message: str, value: Value | None = None, *, column: int = 0, hint: str = "") -> QueryError:
        if value is not None:
            return QueryError(message, column=value.column, token=value.text, text=self.text, hint=hint)
        return QueryError(message, column=column, text=self.text, hint=hint)

    def param(self, value: object) -> str:
        name = f"{self.prefix}{len(self.args)}"
        self.args[name] = value
        return f":{name}"

    def params(self, values: list[str]) -> str:
        return ", ".join(self.param(value) for value in values)

    def node(self, node: Node) -> str:
        if isinstance(node, And):
            return "(" + " AND ".join(self.node(item) for item in node.items) + ")"
        if isinstance(node, Or):
            return "(" + " OR ".join(self.node(item) for item in node.items) + ")"
        if isinstance(node, Not):
            return f"(NOT coalesce({self.node(node.item)}, false))"
        return self.compare(node)

    def compare(self, node: Compare) -> str:
        op = node.op
        if op in ("!=", "!~") or (op == "in" and node.negated):
            positive = Compare(node.field, {"!=": "=", "!~": "~"}.get(op, op), node.values, node.column)
            return f"(NOT coalesce({self.compare(positive)}, false))"
        kind = node.field.kind
        if kind is FieldKind.BOUND:
            return self.bound(node)
        if op in _ORDERED and kind in (FieldKind.LIST, FieldKind.IP, FieldKind.SA):
            raise self.error(f"{node.field.name} cannot be compared with {op}", column=node.column, hint="use = or ~")
        if op == "~" and kind in (FieldKind.INT, FieldKind.TIME):
            raise self.error(f"{node.field.name} cannot be matched with ~", column=node.column, hint="use = < >")
        column = f"`{node.field.column}`"
        if kind is FieldKind.LIST:
            return self.any_of(column, node)
        if kind is FieldKind.IP:
            return self.ip(column, node)
        if kind is FieldKind.JSON:
            return self.json(node)
        if op == "in":
            return "(" + " OR ".join(self.scalar(column, "=", value, node) for value in node.values) + ")"
        return self.scalar(column, op, node.values[0], node)

    def scalar(self, column: str, op: str, value: Value, node: Compare) -> str:
        kind = node.field.kind
        if kind is FieldKind.INT:
            return self.integer(column, op, value, node)
        if kind is FieldKind.TIME:
            moment = parse_time(value.text)
            if moment is None:
                raise self.error("not a time", value, hint="use RFC 3339, e.g. 2026-03-19T10:00:00Z")
            return f"({column} {op} {self.param(moment)})"
        text = value.text
        if kind is FieldKind.SA:
            namespace, slash, name = text.partition("/")
            if not slash or not namespace or not name:
                raise self.error("a service account is NAMESPACE/NAME", value, hint="e.g. sa=kube-system/default")
            text = f"system:serviceaccount:{namespace}:{name}"
        if op == "~":
            return f"({column} RLIKE {self.param(glob_to_regex(text))})"
        if op == "=" and text == "":
            return f"({column} IS NULL)"
        return f"({column} {op} {self.param(text)})"

    def integer(self, column: str, op: str, value: Value, node: Compare) -> str:
        code_class = _CODE_CLASS.match(value.text)
        if code_class and op == "=":
            low = int(code_class[1]) * 100
            return f"({column} BETWEEN {self.param(low)} AND {self.param(low + 99)})"
        try:
            number = int(value.text)
        except ValueError:
            raise self.error(
                f"{node.field.name} takes a whole number", value, hint="e.g. code=403, code>=500, code=4xx"
            ) from None
        return f"({column} {op} {self.param(number)})"

    def any_of(self, column: str, node: Compare) -> str:
        if node.op == "~":
            return f"exists({column}, v -> v RLIKE {self.param(glob_to_regex(node.values[0].text))})"
        return f"arrays_overlap({column}, array({self.params([value.text for value in node.values])}))"

    def ip(self, column: str, node: Compare) -> str:
        if node.op == "~":
            return self.any_of(column, node)
        parts: list[str] = []
        exact: list[str] = []
        for value in node.values:
            try:
                network = ipaddress.ip_network(value.text, strict=False)
            except ValueError:
                raise self.error(
                    "not an IP address or CIDR", value, hint="e.g. ip=10.0.0.0/8 or ip=192.168.1.7"
                ) from None
            if "/" not in value.text:
                exact.append(str(network.network_address))
                continue
            if network.version == 4:
                first, last = int(network.network_address), int(network.broadcast_address)
                expression = _IPV4_INT.format(a="a")
                parts.append(f"exists({column}, a -> {expression} BETWEEN {self.param(first)} AND {self.param(last)})")
            else:
                first_hex = f"{int(network.network_address):032x}"
                last_hex = f"{int(network.broadcast_address):032x}"
                expression = _IPV6_HEX.format(a="a")
                parts.append(
                    f"exists({column}, a -> instr(a, ':') > 0 AND instr(a, '.') = 0 AND "
                    f"{expression} BETWEEN {self.param(first_hex)} AND {self.param(last_hex)})"
                )
        if exact:
            parts.append(f"arrays_overlap({column}, array({self.params(exact)}))")
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

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
        if node.op in _ORDERED and _NUMBER.match(value.text):
            return f"(try_cast({extracted} AS DOUBLE) {node.op} {self.param(float(value.text))})"
        if node.op == "~":
            return f"({extracted} RLIKE {self.param(glob_to_regex(value.text))})"
        if node.op == "=" and value.text == "":
            return f"({extracted} IS NULL)"
        return f"({extracted} {node.op} {self.param(value.text)})"

    def bound(self, node: Compare) -> str:
        name = node.field.name
        if node.op != "=":
            raise self.error(
                f"{name} takes '='", column=node.column, hint=f"e.g. {name}=1h or {name}=2026-03-19T10:00Z"
            )
        value = node.values[0]
        comparison = ">=" if name == "since" else "<"
        duration = parse_duration(value.text)
        if duration is not None:
            if self.now is not None:
                return f"(`time` {comparison} {self.param(self.now - duration)})"
            seconds = int(duration.total_seconds())
            return f"(`time` {comparison} timestampadd(SECOND, {self.param(-seconds)}, current_timestamp()))"
        moment = parse_time(value.text)
        if moment is None:
            raise self.error(
                f"{name} takes a duration or a time", value, hint="e.g. 30m, 1h, 7d or 2026-03-19T10:00:00Z"
            )
        return f"(`time` {comparison} {self.param(moment)})"


def to_spark_sql(filter: Filter, *, now: datetime | None = None, prefix: str = "p") -> tuple[str, dict[str, object]]:
    """A Spark SQL WHERE clause (without `WHERE`) and its named arguments for `spark.sql(sql, args=…)`;
    `since=1h` counts back from `now` (default: Spark's current time). `prefix` keeps the names of several
    clauses apart when they are combined."""
    if filter.root is None:
        return "true", {}
    if not re.fullmatch(r"[a-z]+", prefix):
        raise ValueError(f"argument prefix {prefix!r} is not lower-case letters")
    translator = _Translator(filter.text, now, prefix)
    return translator.node(filter.root), translator.args
