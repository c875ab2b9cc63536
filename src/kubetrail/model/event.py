"""Typed `audit.k8s.io/v1` Event and EventList, as the apiserver writes them."""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

API_VERSION_V1 = "audit.k8s.io/v1"
API_VERSION_V1BETA1 = "audit.k8s.io/v1beta1"
SUPPORTED_EVENT_API_VERSIONS = (API_VERSION_V1, API_VERSION_V1BETA1)

NO_BODY = msgspec.Raw()
"""The one empty body: msgspec omits a default only when it is this very object, so every empty body is made it."""

MicroTime = Annotated[str, msgspec.Meta(description="RFC 3339 timestamp with microseconds, UTC")]


class Level(enum.StrEnum):
    """How much of a request is recorded; ordered from nothing to everything."""

    NONE = "None"
    METADATA = "Metadata"
    REQUEST = "Request"
    REQUEST_RESPONSE = "RequestResponse"

    @property
    def rank(self) -> int:
        """0 for None up to 3 for RequestResponse."""
        return _LEVEL_RANK[self]

    def at_least(self, other: Level) -> bool:
        """True when this level records at least as much as `other`."""
        return _LEVEL_RANK[self] >= _LEVEL_RANK[other]


_LEVEL_RANK = {Level.NONE: 0, Level.METADATA: 1, Level.REQUEST: 2, Level.REQUEST_RESPONSE: 3}


class Stage(enum.StrEnum):
    """The stage of request handling at which an event is generated."""

    REQUEST_RECEIVED = "RequestReceived"
    RESPONSE_STARTED = "ResponseStarted"
    RESPONSE_COMPLETE = "ResponseComplete"
    PANIC = "Panic"


class UserInfo(msgspec.Struct, omit_defaults=True, gc=False):
    """The authenticated (or impersonated) user of a request."""

    username: str = ""
    uid: str = ""
    groups: list[str] = msgspec.field(default_factory=list)
    extra: dict[str, list[str]] = msgspec.field(default_factory=dict)


class ObjectReference(msgspec.Struct, omit_defaults=True, gc=False):
    """The object a resource request targets."""

    resource: str = ""
    namespace: str = ""
    name: str = ""
    uid: str = ""
    apiGroup: str = ""
    apiVersion: str = ""
    resourceVersion: str = ""
    subresource: str = ""


class Status(msgspec.Struct, omit_defaults=True, gc=False):
    """The parts of a metav1.Status that audit events carry in `responseStatus`.

    The apiserver always writes `"metadata":{}`; None (absent) and `{}` are kept apart so
    a decoded status re-encodes exactly as it was written.
    """

    metadata: dict[str, msgspec.Raw] | None = None
    status: str = ""
    message: str = ""
    reason: str = ""
    details: msgspec.Raw = NO_BODY
    code: int = 0

    def __post_init__(self) -> None:
        if self.details is not NO_BODY and not self.details:
            self.details = NO_BODY


class Event(msgspec.Struct, omit_defaults=True, kw_only=True, tag_field="kind", tag="Event", gc=False):
    """One audit event (`audit.k8s.io/v1` Event); request and response bodies stay raw JSON.

    Fields are declared in the apiserver's wire order, so encoding reproduces its layout.
    Events hold only decoded data, never cycles, so they are not tracked by the garbage
    collector (`gc=False`): streams of millions of them do not trigger collection scans.
    """

    apiVersion: str = ""
    level: Level
    auditID: str
    stage: Stage
    requestURI: str
    verb: str
    user: UserInfo
    impersonatedUser: UserInfo | None = None
    sourceIPs: list[str] = msgspec.field(default_factory=list)
    userAgent: str = ""
    objectRef: ObjectReference | None = None
    responseStatus: Status | None = None
    requestObject: msgspec.Raw = NO_BODY
    responseObject: msgspec.Raw = NO_BODY
    requestReceivedTimestamp: MicroTime = ""
    stageTimestamp: MicroTime = ""
    annotations: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.apiVersion:
            self.apiVersion = API_VERSION_V1
        if self.requestObject is not NO_BODY and not self.requestObject:
            self.requestObject = NO_BODY
        if self.responseObject is not NO_BODY and not self.responseObject:
            self.responseObject = NO_BODY

    @property
    def is_resource_request(self) -> bool:
        """Resource requests carry an objectRef; non-resource requests (`/healthz`) do not."""
        return self.objectRef is not None

    @property
    def path(self) -> str:
        """The request path without its query string."""
        uri = self.requestURI
        cut = uri.find("?")
        return uri if cut < 0 else uri[:cut]


class EventList(msgspec.Struct, omit_defaults=True, kw_only=True, tag_field="kind", tag="EventList"):
    """A batch of events, as the webhook backend POSTs them."""

    apiVersion: str = ""
    metadata: dict[str, msgspec.Raw] = msgspec.field(default_factory=dict)
    items: list[Event] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.apiVersion:
            self.apiVersion = API_VERSION_V1
