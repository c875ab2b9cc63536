"""GKE audit logs: Cloud Logging `LogEntry` records whose `protoPayload` is a `google.cloud.audit.AuditLog`.

Accepted as `gcloud logging read` output (YAML documents or a JSON array) or as NDJSON (a Cloud Storage sink).
Each entry becomes an `audit.k8s.io/v1` Event. Taken directly:

- `auditID` ← `operation.id` (else `insertId`); `user.username` ← `authenticationInfo.principalEmail`;
  `sourceIPs` ← `requestMetadata.callerIp`; `userAgent` ← `requestMetadata.callerSuppliedUserAgent`;
  `requestObject`/`responseObject` ← `request`/`response` (without their `@type`);
  `annotations` ← the entry's `labels` (GKE puts the apiserver's annotations there);
  the cluster ← `resource.labels.cluster_name`.

Inferred (GKE does not record them; documented in docs/storage.md):

- `verb` ← the last part of `methodName` (`io.k8s.core.v1.pods.create` → `create`);
- `objectRef` (group, version, namespace, resource, name, subresource) ← `resourceName`, parsed with the
  apiserver's RequestInfo rules (`core/v1/namespaces/ns/pods/p/status`; `core` is the legacy group `""`);
- `requestURI` ← rebuilt from those parts (`/api/v1/…` or `/apis/<group>/<version>/…`, no query string);
- `responseStatus.code` ← `status.code`, a google.rpc code mapped to HTTP (0 → 200, or 201 for `create`;
  7 → 403, 5 → 404, …), and
  `responseStatus.message` ← `status.message`;
- `stage` is `ResponseComplete` (GKE logs completed requests); `level` is `RequestResponse` with a response,
  `Request` with only a request, else `Metadata`;
- `requestReceivedTimestamp` and `stageTimestamp` are both the entry's `timestamp`;
- `user.groups` stays empty; `authorization.k8s.io/decision` comes from `authorizationInfo[].granted` when
  the labels lack it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import yaml

from kubetrail.collect.readers.base import ReadBatch, Rejected, open_input
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

_json = msgspec.json.Encoder()
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


def _http_code(rpc_code: int, verb: str) -> int:
    """The HTTP status: the gRPC mapping, except that a successful create answers 201 Created."""
    if rpc_code == 0 and verb == "create":
        return 201
    return RPC_TO_HTTP.get(rpc_code, 500)


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


def convert_entry(entry: dict[str, Any]) -> tuple[Event, str | None]:
    """One LogEntry → (Event, cluster name). Raises GkeEntryError when a needed field is missing."""
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
    labels = entry.get("labels") or {}
    annotations = {str(key): str(value) for key, value in labels.items()}
    authorization = payload.get("authorizationInfo") or []
    if "authorization.k8s.io/decision" not in annotations and authorization:
        granted = all(bool(item.get("granted")) for item in authorization if isinstance(item, dict))
        annotations["authorization.k8s.io/decision"] = "allow" if granted else "forbid"
    status = payload.get("status") or {}
    rpc_code = int(status.get("code") or 0)
    request = payload.get("request")
    response = payload.get("response")
    level = Level.REQUEST_RESPONSE if response else Level.REQUEST if request else Level.METADATA
    stamp = _timestamp(entry.get("timestamp"))
    verb = method.rsplit(".", 1)[-1]
    caller_ip = metadata.get("callerIp")
    event = Event(
        level=level,
        auditID=audit_id,
        stage=Stage.RESPONSE_COMPLETE,
        requestURI=path,
        verb=verb,
        user=UserInfo(username=str(authentication.get("principalEmail") or "")),
        sourceIPs=[str(caller_ip)] if caller_ip else [],
        userAgent=str(metadata.get("callerSuppliedUserAgent") or ""),
        objectRef=reference,
        responseStatus=Status(code=_http_code(rpc_code, verb), message=str(status.get("message") or "")),
        requestObject=_body(request),
        responseObject=_body(response),
        requestReceivedTimestamp=stamp,
        stageTimestamp=stamp,
        annotations=annotations,
    )
    resource = entry.get("resource") or {}
    cluster = (resource.get("labels") or {}).get("cluster_name")
    return event, str(cluster) if cluster else None


def is_k8s_entry(entry: Any) -> bool:
    payload = entry.get("protoPayload") if isinstance(entry, dict) else None
    if not isinstance(payload, dict):
        return False
    return payload.get("@type") == AUDIT_LOG_TYPE and payload.get("serviceName") == "k8s.io"


def _entries(data: bytes) -> Iterator[tuple[int | None, Any]]:
    stripped = data.lstrip()
    if stripped.startswith(b"["):
        for index, item in enumerate(msgspec.json.decode(stripped)):
            yield index + 1, item
        return
    if stripped.startswith(b"{"):
        lines = data.split(b"\n")
        try:
            values = [(number, msgspec.json.decode(line)) for number, line in enumerate(lines, 1) if line.strip()]
        except msgspec.DecodeError:
            yield None, msgspec.json.decode(stripped)
            return
        yield from values
        return
    for document in yaml.load_all(data, Loader=_SafeLoader):
        if document is not None:
            yield None, document


def read_gke(path: Path) -> Iterator[ReadBatch]:
    """Batches of events converted from GKE Cloud Logging entries (YAML, JSON array or NDJSON; plain or gzip)."""
    with open_input(path) as source:
        data = source.stream.read()
        position = source.position
    batches: dict[str | None, ReadBatch] = {}
    try:
        entries = list(_entries(data))
    except (msgspec.DecodeError, yaml.YAMLError) as error:
        batch = ReadBatch(position=position)
        batch.rejected.append(Rejected(str(path), None, f"not Cloud Logging JSON or YAML: {error}", data[:4096]))
        yield batch
        return
    for line, entry in entries:
        if not is_k8s_entry(entry):
            batch = batches.setdefault(None, ReadBatch())
            batch.skip(NOT_K8S)
            continue
        try:
            event, cluster = convert_entry(entry)
        except (GkeEntryError, ValueError, TypeError, AttributeError) as error:
            batch = batches.setdefault(None, ReadBatch())
            batch.rejected.append(
                Rejected(str(path), line, f"cannot convert the LogEntry: {error}", _json.encode(entry))
            )
            continue
        batch = batches.setdefault(cluster, ReadBatch(cluster=cluster))
        batch.add(event, None)
        if batch.full:
            yield batches.pop(cluster)
    for batch in batches.values():
        batch.position = position
        yield batch
