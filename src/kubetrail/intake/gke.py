"""GKE audit logs: Cloud Logging `LogEntry` records whose `protoPayload` is a `google.cloud.audit.AuditLog`.

Accepted as `gcloud logging read` output (YAML documents or a JSON array) or as NDJSON (a Cloud Storage sink).
Each entry becomes an `audit.k8s.io/v1` Event. Taken directly:

- `auditID` ← `operation.id` (else `insertId`); `user.username` ← `authenticationInfo.principalEmail`;
  `sourceIPs` ← `requestMetadata.callerIp`; `userAgent` ← `requestMetadata.callerSuppliedUserAgent`;
  `requestObject`/`responseObject` ← `request`/`response` (without their `@type`);
  `annotations` ← the entry's `labels` (GKE puts the apiserver's annotations there) and the resource's
  labels (`cluster_name`, `location`, `project_id`), as Falco's GKE plugin does;
  the cluster ← `resource.labels.cluster_name`.

Inferred (GKE does not record them; documented in docs/cloud-mapping.md):

- `verb` ← the last part of `methodName` (`io.k8s.core.v1.pods.create` → `create`);
- `objectRef` (group, version, namespace, resource, name, subresource) ← `resourceName`, parsed with the
  apiserver's RequestInfo rules (`core/v1/namespaces/ns/pods/p/status`; `core` is the legacy group `""`);
- `requestURI` ← rebuilt from those parts (`/api/v1/…` or `/apis/<group>/<version>/…`, no query string);
- `responseStatus.code` ← the `code` of a `Status` response when GKE recorded one, else `status.code`, a
  google.rpc code mapped to HTTP (0 → 200, or 201 for `create`; 7 → 403, 5 → 404, …), and
  `responseStatus.message` ← `status.message`. An update or patch that created its object (server-side apply,
  a PUT to a missing name) is answered 201 by the apiserver, which GKE does not record: it is told by the
  response body, whose `metadata.creationTimestamp` then falls within a second of the entry's time;
- `stage` is `ResponseComplete` (GKE logs each request once, when it completes), except for the streaming
  subresources `exec`, `attach` and `portforward`: a granted one becomes two events, `ResponseStarted` and
  `ResponseComplete`, both with code 101 (Switching Protocols), as the apiserver records an upgraded
  connection and as Falco's GKE plugin reports it;
- `level` is `RequestResponse` with a response, `Request` with only a request, else `Metadata`;
- `requestReceivedTimestamp` and `stageTimestamp` are both the entry's `timestamp`;
- `user.groups` stays empty; `authorization.k8s.io/decision` comes from `authorizationInfo[].granted` when
  the labels lack it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import yaml

from kubetrail.intake.batch import BATCH_EVENTS, Batch, IntakeError
from kubetrail.model import Event, ObjectReference, Stage, Status, UserInfo, format_microtime, parse_microtime
from kubetrail.model.event import Level

AUDIT_LOG_TYPE = "type.googleapis.com/google.cloud.audit.AuditLog"
NOT_K8S = "not a Kubernetes audit entry (another Cloud Logging record)"
# google.rpc.Code → the HTTP status the apiserver answered (the standard gRPC/HTTP mapping).
RPC_TO_HTTP = {
    0: 200, 1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429,
    9: 400, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401,
}  # fmt: skip
# Namespace subresources: /namespaces/<name>/<sub> is the namespace object's subresource, as in RequestInfo.
NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
STREAMING_SUBRESOURCES = frozenset({"exec", "attach", "portforward"})
"""Requests the apiserver answers by upgrading the connection (101), recorded at ResponseStarted too."""
SWITCHING_PROTOCOLS = 101
CREATED = 201
WRITES_THAT_MAY_CREATE = frozenset({"update", "patch"})
CREATION_SLACK_SECONDS = 1
"""How many whole seconds a created object's creationTimestamp may lie from the entry's time."""

_json = msgspec.json.Encoder()
_any = msgspec.json.Decoder()
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class GkeEntryError(ValueError):
    """A LogEntry that claims to be a Kubernetes audit entry but cannot be converted."""


def _timestamp(value: Any) -> str:
    if isinstance(value, datetime):
        return format_microtime(value)
    if isinstance(value, str) and value:
        return format_microtime(parse_microtime(value.replace("Z", "+00:00")))
    return ""


def _body(value: Any) -> msgspec.Raw:
    if not isinstance(value, dict):
        return msgspec.Raw()
    body = {key: item for key, item in value.items() if key != "@type"}
    return msgspec.Raw(_json.encode(body))


def _http_code(rpc_code: int, verb: str, response: Any, *, whole_object: bool, stamp: str) -> int:
    """The HTTP status: a recorded Status response's code, else the gRPC mapping (a successful create: 201, and
    an update or patch of a whole object whose response shows it created by this request: 201)."""
    if isinstance(response, dict) and response.get("kind") == "Status" and isinstance(response.get("code"), int):
        return int(response["code"])
    if rpc_code == 0 and verb == "create":
        return CREATED
    if rpc_code == 0 and verb in WRITES_THAT_MAY_CREATE and whole_object and _created_now(response, stamp):
        return CREATED
    return RPC_TO_HTTP.get(rpc_code, 500)


def _created_now(response: Any, stamp: str) -> bool:
    """Whether the response object was created by this request: its `metadata.creationTimestamp` (whole seconds,
    set by the apiserver while handling the creating request) in the second of `stamp`, the one before or after.

    The entry's time and the creation belong to one request but may straddle a second boundary; the price is
    that an object created and then changed within about a second reads as created by the change.
    """
    metadata = response.get("metadata") if isinstance(response, dict) else None
    try:
        created = _timestamp(metadata.get("creationTimestamp") if isinstance(metadata, dict) else None)
        if not created:
            return False
        moment, request = parse_microtime(created), parse_microtime(stamp)
    except ValueError:
        return False
    return abs(int(moment.timestamp()) - int(request.timestamp())) <= CREATION_SLACK_SECONDS


def object_ref(resource_name: str) -> tuple[ObjectReference | None, str]:
    """Parse `resourceName` into an objectRef and the request path, following the apiserver's RequestInfo."""
    parts = [part for part in resource_name.split("/") if part]
    if len(parts) < 3:
        return None, "/" + "/".join(parts)
    group, version, rest = parts[0], parts[1], parts[2:]
    api_group = "" if group == "core" else group
    prefix = f"/api/{version}" if api_group == "" else f"/apis/{api_group}/{version}"
    path = f"{prefix}/{'/'.join(rest)}"
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces":
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    reference = ObjectReference(
        resource=rest[0],
        namespace=namespace,
        name=rest[1] if len(rest) > 1 else "",
        subresource="/".join(rest[2:]),
        apiGroup=api_group,
        apiVersion=version,
    )
    return reference, path


def _annotations(entry: dict[str, Any], authorization: Any) -> dict[str, str]:
    annotations = {str(key): str(value) for key, value in (entry.get("labels") or {}).items()}
    resource = entry.get("resource") or {}
    for key, value in (resource.get("labels") or {}).items() if isinstance(resource, dict) else ():
        annotations.setdefault(str(key), str(value))
    if "authorization.k8s.io/decision" not in annotations and isinstance(authorization, list) and authorization:
        granted = all(bool(item.get("granted")) for item in authorization if isinstance(item, dict))
        annotations["authorization.k8s.io/decision"] = "allow" if granted else "forbid"
    return annotations


def convert_entry(entry: dict[str, Any]) -> tuple[list[Event], str | None]:
    """One LogEntry → its events (two for a granted exec, attach or portforward) and the cluster name.

    Raises GkeEntryError when a needed field is missing.
    """
    payload = entry.get("protoPayload")
    if not isinstance(payload, dict):
        raise GkeEntryError("no protoPayload")
    method = str(payload.get("methodName") or "")
    if not method:
        raise GkeEntryError("protoPayload has no methodName")
    authentication = payload.get("authenticationInfo") or {}
    metadata = payload.get("requestMetadata") or {}
    operation = entry.get("operation") or {}
    audit_id = str(operation.get("id") or entry.get("insertId") or "")
    if not audit_id:
        raise GkeEntryError("neither operation.id nor insertId is set")
    reference, path = object_ref(str(payload.get("resourceName") or ""))
    status = payload.get("status") or {}
    rpc_code = int(status.get("code") or 0)
    request = payload.get("request")
    response = payload.get("response")
    level = Level.REQUEST_RESPONSE if response else Level.REQUEST if request else Level.METADATA
    stamp = _timestamp(entry.get("timestamp") or entry.get("receiveTimestamp"))
    if not stamp:
        raise GkeEntryError("the entry has no timestamp")
    verb = method.rsplit(".", 1)[-1]
    caller_ip = metadata.get("callerIp")
    whole_object = reference is not None and bool(reference.name) and not reference.subresource
    code = _http_code(rpc_code, verb, response, whole_object=whole_object, stamp=stamp)
    streaming = reference is not None and reference.subresource in STREAMING_SUBRESOURCES and code < 300
    if streaming:
        code = SWITCHING_PROTOCOLS
    username = authentication.get("principalEmail") or authentication.get("principalSubject") or ""
    event = Event(
        level=level,
        auditID=audit_id,
        stage=Stage.RESPONSE_COMPLETE,
        requestURI=path,
        verb=verb,
        user=UserInfo(username=str(username)),
        sourceIPs=[str(caller_ip)] if caller_ip else [],
        userAgent=str(metadata.get("callerSuppliedUserAgent") or ""),
        objectRef=reference,
        responseStatus=Status(code=code, message=str(status.get("message") or "")),
        requestObject=_body(request),
        responseObject=_body(response),
        requestReceivedTimestamp=stamp,
        stageTimestamp=stamp,
        annotations=_annotations(entry, payload.get("authorizationInfo")),
    )
    events = [event]
    if streaming:
        started = msgspec.structs.replace(event, stage=Stage.RESPONSE_STARTED, responseObject=msgspec.Raw())
        events = [started, event]
    resource = entry.get("resource") or {}
    cluster = (resource.get("labels") or {}).get("cluster_name") if isinstance(resource, dict) else None
    return events, str(cluster) if cluster else None


def is_k8s_entry(entry: Any) -> bool:
    payload = entry.get("protoPayload") if isinstance(entry, dict) else None
    if not isinstance(payload, dict):
        return False
    return payload.get("@type") == AUDIT_LOG_TYPE and payload.get("serviceName") == "k8s.io"


def _entries(data: bytes) -> Iterator[tuple[int | None, Any]]:
    """Each LogEntry with its line: a JSON array, NDJSON, one JSON document, or YAML documents."""
    stripped = data.lstrip()
    if stripped.startswith(b"["):
        for index, item in enumerate(_any.decode(stripped)):
            yield index + 1, item
        return
    if stripped.startswith(b"{"):
        values: list[tuple[int | None, Any]] = []
        for number, line in enumerate(data.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                values.append((number, _any.decode(line)))
            except msgspec.DecodeError:
                yield None, _any.decode(stripped)
                return
        yield from values
        return
    for document in yaml.load_all(data, Loader=_SafeLoader):
        if document is not None:
            yield None, document


def decode_gke(chunks: Iterable[bytes], source: str) -> Iterator[Batch]:
    """Batches of events converted from GKE Cloud Logging entries (already inflated)."""
    data = b"".join(chunks)
    batches: dict[str | None, Batch] = {}
    try:
        entries = list(_entries(data))
    except (msgspec.DecodeError, yaml.YAMLError, RecursionError) as error:
        refused = Batch()
        refused.reject(source, None, f"not Cloud Logging JSON or YAML: {error}", data[:4096])
        yield refused
        return
    for line, entry in entries:
        added = add_entry(batches, entry, source, line)
        if added is not None and len(added.events) >= BATCH_EVENTS:
            yield batches.pop(added.cluster)
    for batch in batches.values():
        if not batch.empty:
            yield batch


def add_entry(batches: dict[str | None, Batch], entry: Any, source: str, line: int | None) -> Batch | None:
    """Add one decoded LogEntry's events to the batch of its cluster and return that batch; None when the entry
    was skipped (not a Kubernetes audit entry) or refused (both counted in the batch of no cluster)."""
    if not is_k8s_entry(entry):
        batches.setdefault(None, Batch()).skip(NOT_K8S)
        return None
    try:
        events, cluster = convert_entry(entry)
    except (GkeEntryError, ValueError, TypeError, AttributeError) as error:
        batches.setdefault(None, Batch()).reject(
            source, line, f"cannot convert the LogEntry: {error}", _json.encode(entry)[:4096]
        )
        return None
    batch = batches.setdefault(cluster, Batch(cluster=cluster))
    for event in events:
        batch.add(event, None)
    return batch


# ----- Pub/Sub: a Cloud Logging sink publishes each LogEntry as one message (JSON in `data`) ----------------------


@dataclass(frozen=True)
class PubSubMessage:
    """One Pub/Sub message as a push subscription delivers it (or a pull returns it)."""

    message_id: str
    data: bytes
    publish_time: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    subscription: str = ""


def decode_push(body: bytes, *, source: str) -> PubSubMessage:
    """A push request's body: the documented envelope `{"message": {"data": base64, "attributes", "messageId",
    "publishTime"}, "subscription"}`, or (a subscription with `--push-no-wrapper`) the LogEntry itself.

    Raises IntakeError when the body is neither; what `data` holds is judged later, by `decode_messages`.
    """
    try:
        document = _any.decode(body)
    except (msgspec.DecodeError, RecursionError) as error:
        raise IntakeError(f"not JSON: {error}", source=source) from None
    if not isinstance(document, dict):
        raise IntakeError("not a Pub/Sub push envelope (a JSON object)", source=source)
    message = document.get("message")
    if message is None and ("protoPayload" in document or "logName" in document):
        return PubSubMessage(message_id="", data=body)
    if not isinstance(message, dict):
        raise IntakeError("not a Pub/Sub push envelope: no `message` object", source=source)
    encoded = message.get("data", "")
    try:
        data = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else None
    except (binascii.Error, ValueError):
        data = None
    if data is None:
        raise IntakeError("the message's `data` is not base64", source=source)
    attributes = message.get("attributes") or {}
    subscription = document.get("subscription")
    return PubSubMessage(
        message_id=str(message.get("messageId") or message.get("message_id") or ""),
        data=data,
        publish_time=str(message.get("publishTime") or message.get("publish_time") or ""),
        attributes={str(key): str(value) for key, value in attributes.items()} if isinstance(attributes, dict) else {},
        subscription=str(subscription) if isinstance(subscription, str) else "",
    )


def decode_messages(messages: Iterable[tuple[str, bytes]], source: str) -> list[Batch]:
    """Messages of a Cloud Logging sink (message id, data: one LogEntry as JSON) → one Batch per cluster.

    Each message is judged alone: one that is not a LogEntry is refused (a Rejection naming its message id)
    without costing the others; entries other than Kubernetes audit entries are skipped.
    """
    batches: dict[str | None, Batch] = {}
    for message_id, data in messages:
        where = f"{source} message {message_id}" if message_id else source
        try:
            entry = _any.decode(data)
        except (msgspec.DecodeError, RecursionError) as error:
            batches.setdefault(None, Batch()).reject(where, None, f"not a LogEntry (JSON): {error}", data[:4096])
            continue
        add_entry(batches, entry, where, None)
    return [batch for batch in batches.values() if not batch.empty]
