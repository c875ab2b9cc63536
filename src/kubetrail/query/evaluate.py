"""A filter evaluated in Python on one decoded event, with the meaning the DuckDB translation gives it.

`compile_filter` turns a checked filter into a predicate over an event decoded from its JSON line (a dict),
reading each field as the `events` view of files does (`kubetrail.query.files`): `''` is absent for text
columns, a response code of 0 is absent, a time is `requestReceivedTimestamp` else `stageTimestamp`. A term
on an absent value is false and `!=`, `!~`, `not in` and `not` are its exact complements, so two-valued
logic is exact here.

Where the SQL would read an unusual value in its own way (a number where text is expected, a code written
as a string or a float, a time not in RFC 3339), the evaluator raises `Unclear` rather than guess: the
caller then lets DuckDB decide that line. Filters using globs, IP ranges or JSON pointers are not compiled
(`Unsupported`); they run in DuckDB.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from kubetrail.model.event import SUPPORTED_EVENT_API_VERSIONS, Level, Stage
from kubetrail.query.fields import FieldKind
from kubetrail.query.nodes import And, Compare, Filter, Node, Not, Or, Value
from kubetrail.query.sqlbase import CODE_CLASS
from kubetrail.query.values import parse_duration, parse_time

Event = dict[str, Any]
Predicate = Callable[[Event], bool]


class Unclear(Exception):
    """A value whose reading by the SQL translation is not mirrored here: let DuckDB decide."""


class Unsupported(Exception):
    """A filter term the Python evaluator does not compile (globs, IP ranges, JSON pointers)."""


_MISSING: Any = None
_LEVELS = frozenset(level.value for level in Level)
_STAGES = frozenset(stage.value for stage in Stage)
_API_VERSIONS = frozenset(SUPPORTED_EVENT_API_VERSIONS)
_INT32 = 2**31
# RFC 3339 as Kubernetes writes it: the times whose reading by DuckDB's TIMESTAMPTZ cast is certain.
_MICROTIME_LENGTH = len("2026-03-19T10:00:00.123456Z")
_RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?:([Zz])|([+-])(\d\d):(\d\d))$")

# The path of each column in the event (as `kubetrail.query.files` extracts it) and whether '' is absent.
_TEXT_PATHS: dict[str, tuple[tuple[str, ...], bool]] = {
    "stage": (("stage",), False),
    "level": (("level",), False),
    "verb": (("verb",), True),
    "user": (("user", "username"), True),
    "impersonated_user": (("impersonatedUser", "username"), True),
    "user_agent": (("userAgent",), True),
    "resource": (("objectRef", "resource"), True),
    "subresource": (("objectRef", "subresource"), True),
    "namespace": (("objectRef", "namespace"), True),
    "name": (("objectRef", "name"), True),
    "api_group": (("objectRef", "apiGroup"), True),
    "api_version": (("objectRef", "apiVersion"), True),
    "authz_decision": (("annotations", "authorization.k8s.io/decision"), False),
    "authz_reason": (("annotations", "authorization.k8s.io/reason"), False),
    "request_uri": (("requestURI",), True),
    "audit_id": (("auditID",), False),
}


def _get(event: Event, path: tuple[str, ...]) -> Any:
    value: Any = event
    for key in path:
        if not isinstance(value, dict):
            if value is None:
                return None
            raise Unclear(f"{'.'.join(path)} is not inside an object")
        value = value.get(key, _MISSING)
        if value is None:
            return None
    return value


def text(event: Event, column: str) -> str | None:
    """A text column's value (None when absent)."""
    path, empty_is_absent = _TEXT_PATHS[column]
    value = _get(event, path)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Unclear(f"{column} is not a string")
    if empty_is_absent and not value:
        return None
    return value


def _time_of(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Unclear("a time is not a string")
    match = _RFC3339.match(value)
    if match is None:
        raise Unclear("a time not in RFC 3339")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    if zulu == "Z" and len(value) == _MICROTIME_LENGTH:  # as the API server writes times: parsed in C
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise Unclear("a time out of range") from None
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            int((fraction or "0").ljust(6, "0")), tzinfo=UTC,
        )  # fmt: skip
    except ValueError:
        raise Unclear("a time out of range") from None
    if not zulu:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        moment = moment - offset if sign == "+" else moment + offset
    return moment


_Times = tuple[datetime | None, datetime | None]
_last_times: tuple[Event | None, _Times] = (None, (None, None))
"""The last event whose times were read, and its times: a window term and the sort key read them in turn."""


def times(event: Event) -> _Times:
    """(`time`, `stage_time`): requestReceivedTimestamp (else stageTimestamp), and stageTimestamp."""
    global _last_times
    last = _last_times
    if last[0] is event:
        return last[1]
    stage_time = _time_of(event.get("stageTimestamp"))
    received = _time_of(event.get("requestReceivedTimestamp"))
    found = (received if received is not None else stage_time), stage_time
    _last_times = (event, found)
    return found


def code(event: Event) -> int | None:
    value = _get(event, ("responseStatus", "code"))
    if value is None:
        return None
    if type(value) is not int:
        raise Unclear("the response code is not an integer")
    if not -_INT32 <= value < _INT32:
        raise Unclear("the response code is out of range")
    return value or None


def groups(event: Event) -> list[str] | None:
    value = _get(event, ("user", "groups"))
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Unclear("user.groups is not a list of strings")
    return value or None


def is_event(event: Any) -> bool:
    """Whether a decoded line holds an audit Event's required fields with the right types (as
    `kubetrail.query.files.valid_event` tests them)."""
    if not isinstance(event, dict):
        return False
    kind = event.get("kind", _MISSING)
    if "kind" in event and kind != "Event":
        return False
    version = event.get("apiVersion", _MISSING)
    if "apiVersion" in event and not (isinstance(version, str) and version in _API_VERSIONS):
        return False
    level, stage = event.get("level"), event.get("stage")
    return (
        isinstance(level, str)
        and level in _LEVELS
        and isinstance(stage, str)
        and stage in _STAGES
        and isinstance(event.get("auditID"), str)
        and isinstance(event.get("requestURI"), str)
        and isinstance(event.get("verb"), str)
        and isinstance(event.get("user"), dict)
    )


def sort_key(event: Event) -> tuple[datetime | None, datetime | None, str | None]:
    """(`time`, `stage_time`, `audit_id`): what results are ordered by."""
    time, stage_time = times(event)
    return time, stage_time, text(event, "audit_id")


class _Compiler:
    def __init__(self, cluster: str, now: datetime) -> None:
        self.cluster = cluster
        self.now = now

    def node(self, node: Node) -> Predicate:
        if isinstance(node, And):
            parts = [self.node(item) for item in node.items]
            return lambda event: all(part(event) for part in parts)
        if isinstance(node, Or):
            parts = [self.node(item) for item in node.items]
            return lambda event: any(part(event) for part in parts)
        if isinstance(node, Not):
            inner = self.node(node.item)
            return lambda event: not inner(event)
        return self.compare(node)

    def compare(self, node: Compare) -> Predicate:
        op = node.op
        if op in ("!=", "!~") or (op == "in" and node.negated):
            positive = self.compare(Compare(node.field, {"!=": "=", "!~": "~"}.get(op, op), node.values, node.column))
            return lambda event: not positive(event)
        kind = node.field.kind
        if op == "~" or kind in (FieldKind.IP, FieldKind.JSON):
            raise Unsupported(node.field.name)
        if kind is FieldKind.BOUND:
            return self.bound(node)
        if kind is FieldKind.LIST:
            wanted = {value.text for value in node.values}

            def any_of(event: Event) -> bool:
                found = groups(event)
                return found is not None and not wanted.isdisjoint(found)

            return any_of
        if op == "in":
            parts = [self.scalar(node, "=", value) for value in node.values]
            return lambda event: any(part(event) for part in parts)
        return self.scalar(node, op, node.values[0])

    def scalar(self, node: Compare, op: str, value: Value) -> Predicate:
        kind = node.field.kind
        column = node.field.column
        if kind is FieldKind.INT:
            return self.integer(op, value)
        if kind is FieldKind.TIME:
            moment = parse_time(value.text)
            if moment is None:
                raise Unsupported(node.field.name)
            index = 0 if column == "time" else 1
            return _ordered(lambda event: times(event)[index], op, moment)
        wanted = value.text
        if kind is FieldKind.SA:
            namespace, _, name = wanted.partition("/")
            wanted = f"system:serviceaccount:{namespace}:{name}"
        if column == "cluster":
            label = self.cluster
            return (lambda event: False) if op == "=" and wanted == "" else _ordered(lambda event: label, op, wanted)
        if op == "=" and wanted == "":
            return lambda event: text(event, column) is None
        return _ordered(lambda event: text(event, column), op, wanted)

    def integer(self, op: str, value: Value) -> Predicate:
        code_class = CODE_CLASS.match(value.text)
        if code_class and op == "=":
            low = int(code_class[1]) * 100

            def in_class(event: Event) -> bool:
                found = code(event)
                return found is not None and low <= found <= low + 99

            return in_class
        return _ordered(code, op, int(value.text))

    def bound(self, node: Compare) -> Predicate:
        value = node.values[0].text
        duration = parse_duration(value)
        moment = self.now - duration if duration is not None else parse_time(value)
        if moment is None:
            raise Unsupported(node.field.name)
        return _ordered(lambda event: times(event)[0], ">=" if node.field.name == "since" else "<", moment)


def _ordered(read: Callable[[Event], Any], op: str, wanted: Any) -> Predicate:
    """`read(event) OP wanted`, false when the value is absent."""
    if op == "=":
        return lambda event: read(event) == wanted
    if op == "<":
        return lambda event: (found := read(event)) is not None and found < wanted
    if op == "<=":
        return lambda event: (found := read(event)) is not None and found <= wanted
    if op == ">":
        return lambda event: (found := read(event)) is not None and found > wanted
    if op == ">=":
        return lambda event: (found := read(event)) is not None and found >= wanted
    raise Unsupported(op)


def compile_filter(filter: Filter, *, cluster: str = "default", now: datetime | None = None) -> Predicate:
    """A predicate equal to the filter's SQL on the `events` view of files labelled `cluster`; `since=1h`
    counts back from `now` (default: now). Raises Unsupported for terms it does not compile."""
    if filter.root is None:
        return lambda event: True
    return _Compiler(cluster, now or datetime.now(UTC)).node(filter.root)
