"""The audit event model: `audit.k8s.io/v1` Event, EventList and Policy types and their JSON codecs."""

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
