"""What a policy decision keeps of a fully detailed event: the apiserver's per-level recording rules.

`Metadata` keeps no bodies, `Request` keeps `requestObject`, `RequestResponse` keeps both;
non-resource requests never carry bodies; omitted stages and level None record nothing;
with omitManagedFields, `metadata.managedFields` is dropped from the bodies kept.
"""

from __future__ import annotations

from typing import Any

import msgspec

from kubetrail.model.event import Event, Level
from kubetrail.policy.evaluate import AuditDecision

_EMPTY = msgspec.Raw()
_decode_body = msgspec.json.Decoder(dict[str, Any])
_encode_body = msgspec.json.Encoder()


def strip_managed_fields(body: msgspec.Raw) -> msgspec.Raw:
    """Remove `metadata.managedFields` from an object body (and from each item of a list body)."""
    if not body or b"managedFields" not in bytes(body):
        return body
    try:
        document = _decode_body.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return body
    changed = _drop_managed_fields(document)
    for item in document.get("items") or []:
        if isinstance(item, dict):
            changed = _drop_managed_fields(item) or changed
    return msgspec.Raw(_encode_body.encode(document)) if changed else body


def _drop_managed_fields(document: dict[str, Any]) -> bool:
    metadata = document.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        del metadata["managedFields"]
        return True
    return False


def record(event: Event, decision: AuditDecision) -> Event | None:
    """The event as the apiserver would write it under `decision`, or None when nothing is written."""
    if decision.level is Level.NONE or event.stage in decision.omit_stages:
        return None
    level = decision.level
    request_body = event.requestObject
    response_body = event.responseObject
    if event.objectRef is None or level is Level.METADATA:
        request_body = response_body = _EMPTY
    elif level is Level.REQUEST:
        response_body = _EMPTY
    if decision.omit_managed_fields:
        request_body = strip_managed_fields(request_body)
        response_body = strip_managed_fields(response_body)
    if level == event.level and request_body is event.requestObject and response_body is event.responseObject:
        return event
    return msgspec.structs.replace(event, level=level, requestObject=request_body, responseObject=response_body)
