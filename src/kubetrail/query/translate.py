"""Filter → DuckDB WHERE clause over the store's `events` view, values always as `?` parameters.

Comparisons on a missing value (a cluster-scoped object's namespace, an event without a response code) are
false, and `!=`, `!~`, `not in` and `not` are their exact complements, so `ns!=prod` keeps cluster-scoped events.
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
_ORDERED = frozenset({"<", "<=", ">", ">="})


class _Translator:
    def __init__(self, text: str, now: datetime | None) -> None:
        self.text = text
        self.now = now
        self.params: list[object] = []

    def error(self, message: str, value: Value | None = None, *, column: int = 0, hint: str = "") -> QueryError:
        if value is not None:
            return QueryError(message, column=value.column, token=value.text, text=self.text, hint=hint)
        return QueryError(message, column=column, text=self.text, hint=hint)

    def node(self, node: Node) -> str:
        if isinstance(node, And):
            return "(" + " AND ".join(self.node(item) for item in node.items) + ")"
        if isinstance(node, Or):
            return "(" + " OR ".join(self.node(item) for item in node.items) + ")"
        if isinstance(node, Not):
            return f"(NOT coalesce({self.node(node.item)}, false))"
        return self.compare(node)

    def param(self, value: object) -> str:
        self.params.append(value)
        return "?"

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
        column = f'"{node.field.column}"'
        if kind is FieldKind.LIST:
            return self.any_of(column, node)
        if kind is FieldKind.IP:
            return self.ip(column, node)
        if kind is FieldKind.JSON:
            return self.json(node)
        if op == "in" and kind is FieldKind.TEXT and all(value.text for value in node.values):
            return f"({column} IN ({', '.join(self.param(value.text) for value in node.values)}))"
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
            return f"{column} {op} {self.param(moment)}"
        text = value.text
        if kind is FieldKind.SA:
            namespace, slash, name = text.partition("/")
            if not slash or not namespace or not name:
                raise self.error("a service account is NAMESPACE/NAME", value, hint="e.g. sa=kube-system/default")
            text = f"system:serviceaccount:{namespace}:{name}"
        if op == "~":
            return f"({column} GLOB {self.param(text)})"
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
            return f"(len(list_filter({column}, lambda v: v GLOB {self.param(node.values[0].text)})) > 0)"
        values = [value.text for value in node.values]
        return f"list_has_any({column}, {self.param(values)}::VARCHAR[])"

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
                parts.append(
                    f"(len(list_filter({column}, lambda a: {expression} BETWEEN {self.param(first)} AND "
                    f"{self.param(last)})) > 0)"
                )
            else:
                first_hex = f"{int(network.network_address):032x}"
                last_hex = f"{int(network.broadcast_address):032x}"
                expression = _IPV6_HEX.format(a="a")
                parts.append(
                    f"(len(list_filter({column}, lambda a: contains(a, ':') AND NOT contains(a, '.') AND "
                    f"{expression} BETWEEN {self.param(first_hex)} AND {self.param(last_hex)})) > 0)"
                )
        if exact:
            parts.append(f"list_has_any({column}, {self.param(exact)}::VARCHAR[])")
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

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
        if node.op in _ORDERED and _NUMBER.match(value.text):
            return f"(TRY_CAST({extracted} AS DOUBLE) {node.op} {self.param(float(value.text))})"
        if node.op == "~":
            return f"({extracted} GLOB {self.param(value.text)})"
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
                return f'("time" {comparison} {self.param(self.now - duration)})'
            return f'("time" {comparison} current_timestamp - {self.param(duration)})'
        moment = parse_time(value.text)
        if moment is None:
            raise self.error(
                f"{name} takes a duration or a time", value, hint="e.g. 30m, 1h, 7d or 2026-03-19T10:00:00Z"
            )
        return f'("time" {comparison} {self.param(moment)})'


def to_sql(filter: Filter, *, now: datetime | None = None) -> tuple[str, list[object]]:
    """A WHERE clause (without `WHERE`) and its parameters; `since=1h` counts back from `now` (default: the
    database's current time)."""
    if filter.root is None:
        return "true", []
    translator = _Translator(filter.text, now)
    return translator.node(filter.root), translator.params
