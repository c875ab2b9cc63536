"""The audit event model: `audit.k8s.io/v1` Event, EventList and Policy types and their JSON codecs."""

from typing import TYPE_CHECKING

from kubetrail.lazy import lazy_names

if TYPE_CHECKING:
    from kubetrail.model.codec import (
        LosslessEvent,
        decode_document,
        decode_event,
        decode_event_lossless,
        encode_event,
        encode_event_list,
        encode_ndjson,
    )
    from kubetrail.model.errors import EventDecodeError
    from kubetrail.model.event import (
        API_VERSION_V1,
        API_VERSION_V1BETA1,
        NO_BODY,
        Event,
        EventList,
        Level,
        ObjectReference,
        Stage,
        Status,
        UserInfo,
    )
    from kubetrail.model.microtime import format_microtime, normalize_microtime, parse_microtime
    from kubetrail.model.policy import GroupResources, Policy, PolicyRule

# Each name is imported from its module on first use: the policy commands need the policy types without
# the event codecs.
_HOMES = {
    "API_VERSION_V1": "kubetrail.model.event",
    "API_VERSION_V1BETA1": "kubetrail.model.event",
    "Event": "kubetrail.model.event",
    "EventDecodeError": "kubetrail.model.errors",
    "EventList": "kubetrail.model.event",
    "GroupResources": "kubetrail.model.policy",
    "Level": "kubetrail.model.event",
    "LosslessEvent": "kubetrail.model.codec",
    "NO_BODY": "kubetrail.model.event",
    "ObjectReference": "kubetrail.model.event",
    "Policy": "kubetrail.model.policy",
    "PolicyRule": "kubetrail.model.policy",
    "Stage": "kubetrail.model.event",
    "Status": "kubetrail.model.event",
    "UserInfo": "kubetrail.model.event",
    "decode_document": "kubetrail.model.codec",
    "decode_event": "kubetrail.model.codec",
    "decode_event_lossless": "kubetrail.model.codec",
    "encode_event": "kubetrail.model.codec",
    "encode_event_list": "kubetrail.model.codec",
    "encode_ndjson": "kubetrail.model.codec",
    "format_microtime": "kubetrail.model.microtime",
    "normalize_microtime": "kubetrail.model.microtime",
    "parse_microtime": "kubetrail.model.microtime",
}


__getattr__ = lazy_names(__name__, _HOMES)


__all__ = [
    "API_VERSION_V1",
    "API_VERSION_V1BETA1",
    "NO_BODY",
    "Event",
    "EventDecodeError",
    "EventList",
    "GroupResources",
    "Level",
    "LosslessEvent",
    "ObjectReference",
    "Policy",
    "PolicyRule",
    "Stage",
    "Status",
    "UserInfo",
    "decode_document",
    "decode_event",
    "decode_event_lossless",
    "encode_event",
    "encode_event_list",
    "encode_ndjson",
    "format_microtime",
    "normalize_microtime",
    "parse_microtime",
]
