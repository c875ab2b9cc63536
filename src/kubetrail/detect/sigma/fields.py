"""Sigma field names onto audit events: each name becomes a getter returning every value it has in the event.

Sigma's Kubernetes audit rules name fields by their JSON path in `audit.k8s.io/v1` Event (`verb`,
`objectRef.resource`, `user.username`, `responseStatus.code`, `sourceIPs` ...). Frequent paths read the
typed event directly; any other dotted path walks the event's JSON, fanning out over arrays, so
`requestObject.spec.containers.image` yields every container's image. A few names used by SigmaHQ's
rules exist in no real event; they are read from where the data actually is, with a notice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubetrail.detect.context import MISSING, EventContext

Values = tuple[object, ...]
"""Every value a field has in one event; empty when the field is absent (JSON null is None)."""

Getter = Callable[[EventContext], Values]

_EMPTY: Values = ()


@dataclass(frozen=True, slots=True)
class FieldAlias:
    """A field name SigmaHQ rules use that audit events do not have, and the paths that hold its data."""

    paths: tuple[str, ...]
    reason: str


ALIASES: dict[str, FieldAlias] = {
    "apiGroup": FieldAlias(("objectRef.apiGroup",), "the API group of a request is objectRef.apiGroup"),
    "hostPath": FieldAlias(
        ("requestObject.spec.volumes.hostPath.path", "requestObject.spec.template.spec.volumes.hostPath.path"),
        "hostPath volumes are in the pod spec: requestObject.spec.volumes[].hostPath.path",
    ),
    "capabilities": FieldAlias(
        tuple(
            f"requestObject.spec.{kind}.securityContext.capabilities.add"
            for kind in ("containers", "initContainers", "ephemeralContainers")
        ),
        "added capabilities are in requestObject.spec.containers[].securityContext.capabilities.add",
    ),
}

DECISION_PATH = "annotations.authorization.k8s.io/decision"
"""Where `responseStatus.code: 'ALLOW'`-style rules find the authorization decision (allow / forbid)."""


def _text(value: str) -> Values:
    return (value,) if value else _EMPTY


def _attr(name: str) -> Getter:
    def getter(ctx: EventContext) -> Values:
        return _text(getattr(ctx.event, name))

    return getter


def _ref(name: str) -> Getter:
    def getter(ctx: EventContext) -> Values:
        ref = ctx.event.objectRef
        return _EMPTY if ref is None else _text(getattr(ref, name))

    return getter


def _user(owner: str, name: str) -> Getter:
    def getter(ctx: EventContext) -> Values:
        user = getattr(ctx.event, owner)
        if user is None:
            return _EMPTY
        value = getattr(user, name)
        return tuple(value) if isinstance(value, list) else _text(value)

    return getter


def _status(name: str) -> Getter:
    def getter(ctx: EventContext) -> Values:
        status = ctx.event.responseStatus
        if status is None:
            return _EMPTY
        value = getattr(status, name)
        return (value,) if value else _EMPTY

    return getter


def _source_ips(ctx: EventContext) -> Values:
    return tuple(ctx.event.sourceIPs)


def _annotation(key: str) -> Getter:
    def getter(ctx: EventContext) -> Values:
        value = ctx.event.annotations.get(key)
        return _EMPTY if value is None else (value,)

    return getter


_TYPED: dict[str, Getter] = {
    "verb": _attr("verb"),
    "stage": _attr("stage"),
    "level": _attr("level"),
    "auditID": _attr("auditID"),
    "requestURI": _attr("requestURI"),
    "userAgent": _attr("userAgent"),
    "apiVersion": _attr("apiVersion"),
    "requestReceivedTimestamp": _attr("requestReceivedTimestamp"),
    "stageTimestamp": _attr("stageTimestamp"),
    "sourceIPs": _source_ips,
    **{f"objectRef.{name}": _ref(name) for name in ("resource", "subresource", "namespace", "name", "apiGroup")},
    **{f"objectRef.{name}": _ref(name) for name in ("apiVersion", "uid", "resourceVersion")},
    **{f"{owner}.{name}": _user(owner, name) for owner in ("user", "impersonatedUser") for name in ("username", "uid")},
    **{f"{owner}.groups": _user(owner, "groups") for owner in ("user", "impersonatedUser")},
    **{f"responseStatus.{name}": _status(name) for name in ("code", "status", "reason", "message")},
}


def _walk(node: Any, parts: list[str], out: list[object]) -> None:
    """Collect the values at `parts` below `node`; arrays fan out; a key may itself hold dots."""
    if isinstance(node, list):
        for item in node:
            _walk(item, parts, out)
        return
    if not parts:
        out.append(node)
        return
    if not isinstance(node, dict):
        return
    for cut in range(len(parts), 0, -1):
        key = ".".join(parts[:cut]) if cut > 1 else parts[0]
        if key in node:
            _walk(node[key], parts[cut:], out)
            return


def _flatten(found: list[object]) -> Values:
    values: list[object] = []
    for value in found:
        if isinstance(value, list):
            values.extend(value)
        else:
            values.append(value)
    return tuple(values)


def _body(attribute: str, parts: list[str]) -> Getter:
    def getter(ctx: EventContext) -> Values:
        body = getattr(ctx, attribute)
        if body is MISSING:
            return _EMPTY
        found: list[object] = []
        _walk(body, parts, found)
        return _flatten(found)

    return getter


def _document(parts: list[str]) -> Getter:
    def getter(ctx: EventContext) -> Values:
        found: list[object] = []
        _walk(ctx.document, parts, found)
        return _flatten(found)

    return getter


Text = Callable[[EventContext], str]
"""A single-valued string field read straight from the typed event; "" when absent (the apiserver omits empties)."""

_EVENT_TEXT = ("verb", "stage", "level", "auditID", "requestURI", "userAgent", "apiVersion")
_REF_TEXT = ("resource", "subresource", "namespace", "name", "apiGroup", "apiVersion", "uid", "resourceVersion")


def _event_text(name: str) -> Text:
    return lambda ctx: getattr(ctx.event, name)


def _ref_text(name: str) -> Text:
    def text(ctx: EventContext) -> str:
        ref = ctx.event.objectRef
        return "" if ref is None else getattr(ref, name)

    return text


def _user_text(ctx: EventContext) -> str:
    return ctx.event.user.username


def _annotation_text(key: str) -> Text:
    return lambda ctx: ctx.event.annotations.get(key, "")


_TEXT: dict[str, Text] = {
    **{name: _event_text(name) for name in _EVENT_TEXT},
    **{f"objectRef.{name}": _ref_text(name) for name in _REF_TEXT},
    "user.username": _user_text,
}


def text_getter(path: str) -> Text | None:
    """A faster getter for single-valued string fields of the typed event; None for any other field.

    It reads the same values as `path_getter` ("" meaning absent), without building a tuple.
    """
    if path.startswith("annotations.") and len(path) > len("annotations."):
        return _annotation_text(path.removeprefix("annotations."))
    return _TEXT.get(path)


def _response_code(ctx: EventContext) -> int:
    status = ctx.event.responseStatus
    return 0 if status is None else status.code


def code_getter(path: str) -> Callable[[EventContext], int] | None:
    """The response code as an int (0 when absent) for `responseStatus.code`; None for other fields."""
    return _response_code if path == "responseStatus.code" else None


def is_typed(path: str) -> bool:
    """True when the path is read from the typed event, without parsing any JSON."""
    return path in _TYPED or path.startswith("annotations.")


def path_getter(path: str) -> Getter:
    """The getter for one dotted path into the event (no aliases applied)."""
    typed = _TYPED.get(path)
    if typed is not None:
        return typed
    head, _, rest = path.partition(".")
    if head == "annotations" and rest:
        return _annotation(rest)
    parts = rest.split(".") if rest else []
    if head == "requestObject":
        return _body("request", parts)
    if head == "responseObject":
        return _body("response", parts)
    return _document(path.split("."))


def _joined(getters: list[Getter]) -> Getter:
    def getter(ctx: EventContext) -> Values:
        values: list[object] = []
        for each in getters:
            values.extend(each(ctx))
        return tuple(values)

    return getter


def field_getter(name: str) -> tuple[Getter, FieldAlias | None]:
    """The getter for a Sigma field name, and the alias used when the name is not an audit event field."""
    alias = ALIASES.get(name)
    if alias is None:
        return path_getter(name), None
    getters = [path_getter(path) for path in alias.paths]
    return (getters[0] if len(getters) == 1 else _joined(getters)), alias


@dataclass(frozen=True, slots=True)
class Resolved:
    """What one field name of a rule reads in an event.

    `path` is the audit event path the name reads, when it reads one (it enables the typed fast paths);
    `text` a faster reader for a single-valued string; `notice` what the user should know about the name.
    """

    getter: Getter
    path: str | None = None
    text: Text | None = None
    notice: str = ""


FieldResolver = Callable[[str], Resolved]
"""A logsource's field names onto audit events: `audit_field` for Kubernetes audit rules."""


def audit_field(name: str) -> Resolved:
    """A Kubernetes audit rule's field name: a dotted path into the Event, or an alias for a name events lack."""
    getter, alias = field_getter(name)
    if alias is None:
        return Resolved(getter, name)
    path = alias.paths[0] if len(alias.paths) == 1 else None
    return Resolved(getter, path, notice=f"field '{name}' is not in audit events; {alias.reason}")


def document_strings(ctx: EventContext) -> Values:
    """Every string leaf of the event, for Sigma keyword (field-less) searches."""
    out: list[object] = []
    stack: list[Any] = [ctx.document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            out.append(node)
    return tuple(out)
