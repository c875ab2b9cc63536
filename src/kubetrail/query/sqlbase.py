"""What every SQL dialect's filter translator shares: the filter's meaning, with the spelling left to hooks.

Comparisons on a missing value are false, and `!=`, `!~`, `not in` and `not` are their exact complements, so
`ns!=prod` keeps cluster-scoped events. A dialect supplies quoting, parameters, glob matching, list and
JSON predicates and IP ranges; everything else (negation, validation, codes, service accounts, time bounds)
is decided here once.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timedelta

from kubetrail.query.errors import QueryError
from kubetrail.query.fields import FieldKind
from kubetrail.query.nodes import And, Compare, Node, Not, Or, Value
from kubetrail.query.values import parse_duration, parse_time

CODE_CLASS = re.compile(r"^([1-5])xx$", re.IGNORECASE)
NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
ORDERED = frozenset({"<", "<=", ">", ">="})


class SqlTranslator:
    """Filter nodes → a WHERE clause; subclasses spell the dialect-specific parts."""

    def __init__(self, text: str, now: datetime | None) -> None:
        self.text = text
        self.now = now

    # ----- the dialect's spelling -------------------------------------------------------------------------

    def quote(self, column: str) -> str:
        raise NotImplementedError

    def param(self, value: object) -> str:
        raise NotImplementedError

    def glob(self, expression: str, pattern: str) -> str:
        """`expression` matches the glob `pattern` (a boolean SQL expression)."""
        raise NotImplementedError

    def any_glob(self, column: str, pattern: str) -> str:
        """Some element of the list `column` matches the glob `pattern`."""
        raise NotImplementedError

    def has_any(self, column: str, values: list[str]) -> str:
        """The list `column` holds one of `values`."""
        raise NotImplementedError

    def ipv4_in(self, column: str, first: int, last: int) -> str:
        raise NotImplementedError

    def ipv6_in(self, column: str, first_hex: str, last_hex: str) -> str:
        raise NotImplementedError

    def json(self, node: Compare) -> str:
        raise NotImplementedError

    def ago(self, duration: timedelta) -> str:
        """The database's current time less `duration`."""
        raise NotImplementedError

    def text_in(self, column: str, node: Compare) -> str | None:
        """A dialect's shortcut for `in` on a text column (None: spell it as ORed equalities)."""
        return None

    # ----- the meaning ------------------------------------------------------------------------------------

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

    def compare(self, node: Compare) -> str:
        op = node.op
        if op in ("!=", "!~") or (op == "in" and node.negated):
            positive = Compare(node.field, {"!=": "=", "!~": "~"}.get(op, op), node.values, node.column)
            return f"(NOT coalesce({self.compare(positive)}, false))"
        kind = node.field.kind
        if kind is FieldKind.BOUND:
            return self.bound(node)
        if op in ORDERED and kind in (FieldKind.LIST, FieldKind.IP, FieldKind.SA):
            raise self.error(f"{node.field.name} cannot be compared with {op}", column=node.column, hint="use = or ~")
        if op == "~" and kind in (FieldKind.INT, FieldKind.TIME):
            raise self.error(f"{node.field.name} cannot be matched with ~", column=node.column, hint="use = < >")
        column = self.quote(node.field.column)
        if kind is FieldKind.LIST:
            return self.any_of(column, node)
        if kind is FieldKind.IP:
            return self.ip(column, node)
        if kind is FieldKind.JSON:
            return self.json(node)
        if op == "in" and kind is FieldKind.TEXT and all(value.text for value in node.values):
            shortcut = self.text_in(column, node)
            if shortcut is not None:
                return shortcut
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
            return f"({self.glob(column, text)})"
        if op == "=" and text == "":
            return f"({column} IS NULL)"
        return f"({column} {op} {self.param(text)})"

    def integer(self, column: str, op: str, value: Value, node: Compare) -> str:
        code_class = CODE_CLASS.match(value.text)
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
            return self.any_glob(column, node.values[0].text)
        return self.has_any(column, [value.text for value in node.values])

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
            elif network.version == 4:
                parts.append(self.ipv4_in(column, int(network.network_address), int(network.broadcast_address)))
            else:
                first_hex = f"{int(network.network_address):032x}"
                parts.append(self.ipv6_in(column, first_hex, f"{int(network.broadcast_address):032x}"))
        if exact:
            parts.append(self.has_any(column, exact))
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def bound(self, node: Compare) -> str:
        name = node.field.name
        if node.op != "=":
            raise self.error(
                f"{name} takes '='", column=node.column, hint=f"e.g. {name}=1h or {name}=2026-03-19T10:00Z"
            )
        value = node.values[0]
        comparison = ">=" if name == "since" else "<"
        time = self.quote("time")
        duration = parse_duration(value.text)
        if duration is not None:
            if self.now is not None:
                return f"({time} {comparison} {self.param(self.now - duration)})"
            return f"({time} {comparison} {self.ago(duration)})"
        moment = parse_time(value.text)
        if moment is None:
            raise self.error(
                f"{name} takes a duration or a time", value, hint="e.g. 30m, 1h, 7d or 2026-03-19T10:00:00Z"
            )
        return f"({time} {comparison} {self.param(moment)})"
