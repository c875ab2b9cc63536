"""The fields a filter may name: the store's flat columns under short names, and `event./json/pointer` paths."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import Enum


class FieldKind(Enum):
    TEXT = "text"
    INT = "integer"
    LIST = "list of text"
    IP = "IP address"
    TIME = "time"
    SA = "service account"
    JSON = "JSON value"
    BOUND = "time bound"


@dataclass(frozen=True)
class Field:
    """A named field: the column of the `events` view it reads and how its values compare."""

    name: str
    column: str
    kind: FieldKind
    help: str


JSON_PREFIX = "event."

FIELDS: tuple[Field, ...] = (
    Field("user", "user", FieldKind.TEXT, "user.username"),
    Field("group", "groups", FieldKind.LIST, "one of user.groups"),
    Field("sa", "user", FieldKind.SA, "service account as NAMESPACE/NAME (user system:serviceaccount:NS:NAME)"),
    Field("impersonated", "impersonated_user", FieldKind.TEXT, "impersonatedUser.username"),
    Field("verb", "verb", FieldKind.TEXT, "verb (get, list, watch, create, update, patch, delete, …)"),
    Field("resource", "resource", FieldKind.TEXT, "objectRef.resource (pods, secrets, …)"),
    Field("subresource", "subresource", FieldKind.TEXT, "objectRef.subresource (exec, log, status, …)"),
    Field("ns", "namespace", FieldKind.TEXT, "objectRef.namespace"),
    Field("name", "name", FieldKind.TEXT, "objectRef.name"),
    Field("apigroup", "api_group", FieldKind.TEXT, "objectRef.apiGroup ('' is the core group)"),
    Field("apiversion", "api_version", FieldKind.TEXT, "objectRef.apiVersion"),
    Field("code", "response_code", FieldKind.INT, "responseStatus.code (also 4xx, 5xx)"),
    Field("decision", "authz_decision", FieldKind.TEXT, "annotation authorization.k8s.io/decision (allow, forbid)"),
    Field("reason", "authz_reason", FieldKind.TEXT, "annotation authorization.k8s.io/reason"),
    Field("ip", "source_ips", FieldKind.IP, "one of sourceIPs; a CIDR (10.0.0.0/8) matches every address in it"),
    Field("ua", "user_agent", FieldKind.TEXT, "userAgent"),
    Field("uri", "request_uri", FieldKind.TEXT, "requestURI"),
    Field("id", "audit_id", FieldKind.TEXT, "auditID"),
    Field("stage", "stage", FieldKind.TEXT, "stage (RequestReceived, ResponseStarted, ResponseComplete, Panic)"),
    Field("level", "level", FieldKind.TEXT, "level (Metadata, Request, RequestResponse)"),
    Field("cluster", "cluster", FieldKind.TEXT, "the cluster the event was received from"),
    Field("time", "time", FieldKind.TIME, "requestReceivedTimestamp (RFC 3339)"),
    Field("stagetime", "stage_time", FieldKind.TIME, "stageTimestamp (RFC 3339)"),
    Field("since", "time", FieldKind.BOUND, "time >= now - DURATION (30m, 1h, 7d) or >= an RFC 3339 time"),
    Field("until", "time", FieldKind.BOUND, "time < now - DURATION or < an RFC 3339 time"),
)

ALIASES: dict[str, str] = {
    "username": "user",
    "groups": "group",
    "serviceaccount": "sa",
    "impersonated_user": "impersonated",
    "namespace": "ns",
    "api_group": "apigroup",
    "apiGroup": "apigroup",
    "api_version": "apiversion",
    "response_code": "code",
    "status": "code",
    "authz_decision": "decision",
    "authz_reason": "reason",
    "source_ip": "ip",
    "source_ips": "ip",
    "sourceip": "ip",
    "user_agent": "ua",
    "useragent": "ua",
    "request_uri": "uri",
    "audit_id": "id",
    "auditid": "id",
    "stage_time": "stagetime",
}

_BY_NAME = {field.name: field for field in FIELDS}


def lookup(name: str) -> Field | None:
    """The field called `name` (or an alias of it), a JSON pointer field for `event./…`, or None."""
    if name.startswith(JSON_PREFIX):
        pointer = name[len(JSON_PREFIX) :]
        return Field(name, pointer, FieldKind.JSON, "a value inside the event's JSON")
    canonical = ALIASES.get(name, ALIASES.get(name.lower(), name.lower()))
    return _BY_NAME.get(canonical)


def suggestion(name: str) -> str:
    """A hint naming the closest known field, or listing them all."""
    names = [field.name for field in FIELDS] + list(ALIASES)
    close = difflib.get_close_matches(name.lower(), names, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return "fields: " + ", ".join(field.name for field in FIELDS) + ", event./json/pointer"
