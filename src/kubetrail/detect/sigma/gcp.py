"""GCP audit rules (`product: gcp, service: gcp.audit`) on the events kubetrail made of GKE's Cloud Logging entries.

kubetrail keeps each GKE `LogEntry` only as the audit.k8s.io/v1 Event the intake converted it to (intake/gke.py),
so a rule's LogEntry field is rebuilt from the Event by running that conversion backwards: `methodName` is
`io.k8s.<group>.<version>.<resource>[.<subresource>].<verb>` written as GKE writes it (a dotted API group
reversed: `rbac.authorization.k8s.io` → `io.k8s.authorization.rbac`), `resourceName` the path the objectRef was
parsed from, `principalEmail` the username, and so on (docs/sigma.md has the table). Names are accepted as the
entry's JSON paths (`protoPayload.methodName`), inside a Pub/Sub message (`data.protoPayload.methodName`) and as
Elastic names them (`gcp.audit.method_name`): SigmaHQ's GCP rules use all three. A name the conversion does not
keep reads as absent, with a notice when the rule loads.
"""

from __future__ import annotations

from collections.abc import Callable

from kubetrail.detect.context import EventContext
from kubetrail.detect.sigma.fields import Resolved, Text, Values, path_getter
from kubetrail.model import ObjectReference, Stage

PRODUCT = "gcp"
SERVICE = "gcp.audit"

AUDIT_LOG_TYPE = "type.googleapis.com/google.cloud.audit.AuditLog"
SERVICE_NAME = "k8s.io"
RESOURCE_TYPE = "k8s_cluster"
RESOURCE_LABELS = ("cluster_name", "location", "project_id")
"""The `k8s_cluster` resource's labels: the GKE intake copies them into the event's annotations."""
READ_VERBS = frozenset({"get", "list", "watch"})
"""GKE logs these requests as Data Access, every other one as Admin Activity."""

HTTP_TO_RPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 422: 3, 429: 8, 499: 1, 500: 13, 501: 12, 503: 14, 504: 4}
"""HTTP status → google.rpc code, inverting intake/gke.py's mapping. Codes that share a status there
(400: 3, 9, 11; 409: 6, 10; 500: 2, 13, 15) come back as the first listed here."""


def converted_from_gke(ctx: EventContext) -> bool:
    """Whether the event is the one the intake made of a GKE LogEntry (not the ResponseStarted copy of a session).

    The intake puts the entry's resource labels (`cluster_name`, `location`, `project_id`) into the annotations;
    events written by an apiserver have none of them.
    """
    event = ctx.event
    annotations = event.annotations
    return event.stage is Stage.RESPONSE_COMPLETE and all(key in annotations for key in RESOURCE_LABELS)


def group_prefix(group: str) -> str:
    """How GKE's method names spell an API group: `""` → `io.k8s.core`, `apps` → `io.k8s.apps`, a DNS name reversed."""
    if not group:
        return "io.k8s.core"
    if "." not in group:
        return f"io.k8s.{group}"
    return ".".join(reversed(group.split(".")))


def method_name(ref: ObjectReference | None, verb: str) -> str:
    """`io.k8s.core.v1.pods.exec.create`: what GKE writes in `methodName`; "" without an objectRef."""
    if ref is None or not ref.resource or not ref.apiVersion or not verb:
        return ""
    parts = [group_prefix(ref.apiGroup), ref.apiVersion, ref.resource]
    if ref.subresource:
        parts.append(ref.subresource.partition("/")[0])
    parts.append(verb)
    return ".".join(parts)


def resource_name(ref: ObjectReference | None) -> str:
    """`core/v1/namespaces/shop/pods/web-0/exec`: the `resourceName` the intake parsed the objectRef from."""
    if ref is None or not ref.resource or not ref.apiVersion:
        return ""
    parts = [ref.apiGroup or "core", ref.apiVersion]
    if ref.namespace and not (ref.resource == "namespaces" and ref.name == ref.namespace):
        parts += ["namespaces", ref.namespace]
    parts.append(ref.resource)
    if ref.name:
        parts.append(ref.name)
    if ref.subresource:
        parts.append(ref.subresource)
    return "/".join(parts)


def rpc_code(http: int) -> int:
    """The google.rpc code GKE records for an HTTP status: 0 below 400, else the inverse of the intake's mapping."""
    if http < 400:
        return 0
    return HTTP_TO_RPC.get(http, 9 if http < 500 else 2)


_METHOD = object()
_RESOURCE = object()


def _method(ctx: EventContext) -> str:
    cache = ctx.cache
    found = cache.get(_METHOD)
    if found is None:
        found = cache[_METHOD] = method_name(ctx.event.objectRef, ctx.event.verb)
    return str(found)


def _resource(ctx: EventContext) -> str:
    cache = ctx.cache
    found = cache.get(_RESOURCE)
    if found is None:
        found = cache[_RESOURCE] = resource_name(ctx.event.objectRef)
    return str(found)


def _caller_ip(ctx: EventContext) -> str:
    ips = ctx.event.sourceIPs
    return ips[0] if ips else ""


def _log_name(ctx: EventContext) -> str:
    project = ctx.event.annotations.get("project_id")
    if not project:
        return ""
    kind = "data_access" if ctx.event.verb in READ_VERBS else "activity"
    return f"projects/{project}/logs/cloudaudit.googleapis.com%2F{kind}"


def _status_code(ctx: EventContext) -> Values:
    status = ctx.event.responseStatus
    return () if status is None or not status.code else (rpc_code(status.code),)


def _granted(ctx: EventContext) -> Values:
    decision = ctx.event.annotations.get("authorization.k8s.io/decision")
    return () if decision is None else (decision == "allow",)


def _computed(text: Text) -> Resolved:
    def getter(ctx: EventContext) -> Values:
        found = text(ctx)
        return (found,) if found else ()

    return Resolved(getter, text=text)


def _constant(value: object) -> Resolved:
    values = (value,)
    return Resolved(lambda ctx: values)


def _event(path: str) -> Resolved:
    return Resolved(path_getter(path), path)


_ENTRY: dict[str, Resolved] = {
    "protoPayload.@type": _constant(AUDIT_LOG_TYPE),
    "protoPayload.serviceName": _constant(SERVICE_NAME),
    "protoPayload.methodName": _computed(_method),
    "protoPayload.resourceName": _computed(_resource),
    "protoPayload.authenticationInfo.principalEmail": _event("user.username"),
    "protoPayload.authorizationInfo.granted": Resolved(_granted),
    "protoPayload.authorizationInfo.permission": _computed(_method),
    "protoPayload.authorizationInfo.resource": _computed(_resource),
    "protoPayload.requestMetadata.callerIp": _computed(_caller_ip),
    "protoPayload.requestMetadata.callerSuppliedUserAgent": _event("userAgent"),
    "protoPayload.status.code": Resolved(_status_code),
    "protoPayload.status.message": _event("responseStatus.message"),
    "logName": _computed(_log_name),
    "insertId": _event("auditID"),
    "operation.id": _event("auditID"),
    "operation.producer": _constant(SERVICE_NAME),
    "resource.type": _constant(RESOURCE_TYPE),
    **{f"resource.labels.{key}": _event(f"annotations.{key}") for key in RESOURCE_LABELS},
}
"""LogEntry fields by their JSON path, each rebuilt from the event."""

_BODIES = {"protoPayload.request.": "requestObject.", "protoPayload.response.": "responseObject."}

_ELASTIC: dict[str, str] = {
    "gcp.audit.type": "protoPayload.@type",
    "gcp.audit.service_name": "protoPayload.serviceName",
    "gcp.audit.method_name": "protoPayload.methodName",
    "gcp.audit.resource_name": "protoPayload.resourceName",
    "gcp.audit.authentication_info.principal_email": "protoPayload.authenticationInfo.principalEmail",
    "gcp.audit.authorization_info.granted": "protoPayload.authorizationInfo.granted",
    "gcp.audit.authorization_info.permission": "protoPayload.authorizationInfo.permission",
    "gcp.audit.authorization_info.resource": "protoPayload.authorizationInfo.resource",
    "gcp.audit.request_metadata.caller_ip": "protoPayload.requestMetadata.callerIp",
    "gcp.audit.request_metadata.caller_supplied_user_agent": "protoPayload.requestMetadata.callerSuppliedUserAgent",
    "gcp.audit.status.code": "protoPayload.status.code",
    "gcp.audit.status.message": "protoPayload.status.message",
    "gcp.audit.logentry_operation.id": "operation.id",
    "gcp.audit.logentry_operation.producer": "operation.producer",
}
"""Elastic's GCP integration names (`gcp.audit.*`) → the LogEntry path they hold."""

_ELASTIC_BODIES = {"gcp.audit.request.": "protoPayload.request.", "gcp.audit.response.": "protoPayload.response."}

_PAYLOAD_FIELDS = frozenset(
    {
        "serviceName", "methodName", "resourceName", "resourceLocation", "resourceOriginalState", "numResponseItems",
        "status", "authenticationInfo", "authorizationInfo", "policyViolationInfo", "requestMetadata", "request",
        "response", "metadata", "serviceData", "@type",
    }
)  # fmt: skip
"""The fields of google.cloud.audit.AuditLog: a `protoPayload.` name outside them means a LogEntry field."""

_NONE = Resolved(lambda ctx: ())


def _entry_field(path: str) -> Resolved | None:
    """A LogEntry path as the event holds it; None when the conversion keeps no such field."""
    known = _ENTRY.get(path)
    if known is not None:
        return known
    for prefix, body in _BODIES.items():
        if path.startswith(prefix) and path != f"{prefix}@type":
            return _event(body + path.removeprefix(prefix))
    key = path.removeprefix("labels.")
    if key != path and key and key not in RESOURCE_LABELS:
        return _event(f"annotations.{key}")
    return None


def _canonical(name: str) -> str:
    """The LogEntry path for a name in any of the three spellings."""
    name = name.removeprefix("data.")
    elastic = _ELASTIC.get(name)
    if elastic is not None:
        return elastic
    for prefix, body in _ELASTIC_BODIES.items():
        if name.startswith(prefix):
            return body + name.removeprefix(prefix)
    return name


def gcp_field(name: str) -> Resolved:
    """A GCP audit rule's field name, read from an event the intake made of a GKE LogEntry."""
    path = _canonical(name)
    found = _entry_field(path)
    if found is not None:
        return found
    rest = path.removeprefix("protoPayload.")
    if rest != path and rest.partition(".")[0] not in _PAYLOAD_FIELDS:
        moved = _entry_field(rest)
        if moved is not None:
            return Resolved(
                moved.getter,
                moved.path,
                moved.text,
                notice=f"field '{name}' is not in an AuditLog payload; read as the LogEntry's '{rest}'",
            )
    return Resolved(
        _NONE.getter,
        notice=f"field '{name}' cannot be rebuilt from GKE events (kubetrail keeps the audit event, not the "
        "LogEntry): it reads as absent and matches only null or exists: false (docs/sigma.md lists the fields)",
    )


def on_gke(predicate: Callable[[EventContext], bool]) -> Callable[[EventContext], bool]:
    """A GCP audit rule's predicate, tried only on events converted from GKE entries."""
    return lambda ctx: converted_from_gke(ctx) and predicate(ctx)
