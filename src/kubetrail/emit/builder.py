"""Audit events of one request, stage by stage, as kube-apiserver's audit filter writes them.

A `RequestRecorder` follows one request: `received()` at arrival, `log_request_body` /
`log_response` as the handler runs, `started()` when a long-running response begins (watch,
exec, attach, log, portforward, proxy), `complete()` at the end, or `panic()`. Each stage
returns the events to hand to a backend (none when the policy omits the stage or its level is
None). All stages share one auditID; `requestReceivedTimestamp` is the arrival time and
`stageTimestamp` the clock's time at each stage (RequestReceived uses the arrival time). The
per-level body rules are `kubetrail.policy.record`'s. Time and IDs come from injected callables.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from kubetrail.emit.requestinfo import RequestInfo, resolve_request_info
from kubetrail.model.event import NO_BODY, Event, Level, ObjectReference, Stage, Status, UserInfo
from kubetrail.model.microtime import format_microtime
from kubetrail.policy.attributes import RequestAttributes
from kubetrail.policy.evaluate import AuditDecision, CompiledPolicy
from kubetrail.policy.record import record

Clock = Callable[[], datetime]

MAX_USER_AGENT_LENGTH = 1024
USER_AGENT_TRUNCATE_SUFFIX = "...TRUNCATED"
_EMPTY = NO_BODY


class _BodyMeta(msgspec.Struct):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resourceVersion: str = ""


class _BodyHead(msgspec.Struct):
    kind: str = ""
    metadata: _BodyMeta | None = None


class _StatusBody(msgspec.Struct):
    status: str = ""
    message: str = ""
    reason: str = ""
    details: msgspec.Raw = msgspec.Raw()


_decode_head = msgspec.json.Decoder(_BodyHead)
_decode_status = msgspec.json.Decoder(_StatusBody)


def utc_now() -> datetime:
    """The wall clock in UTC: the default clock."""
    return datetime.now(UTC)


def random_audit_id() -> str:
    """A random UUID, as the apiserver assigns when the request has no `Audit-ID` header."""
    return str(uuid.uuid4())


def truncate_user_agent(user_agent: str) -> str:
    """User agents longer than 1024 bytes are cut and marked, as the apiserver does."""
    raw = user_agent.encode()
    if len(raw) <= MAX_USER_AGENT_LENGTH:
        return user_agent
    return raw[:MAX_USER_AGENT_LENGTH].decode(errors="replace") + USER_AGENT_TRUNCATE_SUFFIX


def request_uri(url: str) -> str:
    """The request URI as Go's `URL.RequestURI()` gives it: path and query, without scheme, host or fragment."""
    url = url.split("#", 1)[0]
    if not url.startswith("/") and "://" in url:
        rest = url.split("://", 1)[1]
        slash, question = rest.find("/"), rest.find("?")
        cut = min(index for index in (slash, question, len(rest)) if index >= 0)
        url = rest[cut:]
    if not url or url.startswith("?"):
        url = "/" + url
    return url


def attributes_for(info: RequestInfo, user: UserInfo) -> RequestAttributes:
    """The policy attributes of a request: its info plus the authenticated user."""
    return RequestAttributes(
        user=user.username,
        groups=tuple(user.groups),
        verb=info.verb,
        is_resource_request=info.is_resource_request,
        namespace=info.namespace,
        api_group=info.api_group,
        resource=info.resource,
        subresource=info.subresource,
        name=info.name,
        path=info.path,
    )


def decide(policy: CompiledPolicy, info: RequestInfo, user: UserInfo) -> AuditDecision:
    """The policy's decision for a request."""
    return policy.evaluate(attributes_for(info, user))


def _as_raw(body: bytes | msgspec.Raw | None) -> msgspec.Raw:
    if body is None:
        return _EMPTY
    return body if isinstance(body, msgspec.Raw) else msgspec.Raw(body)


def _head(body: msgspec.Raw) -> _BodyHead | None:
    if not body:
        return None
    try:
        return _decode_head.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _status_of(body: msgspec.Raw) -> _StatusBody | None:
    try:
        return _decode_status.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


class RequestRecorder:
    """The audit record of one request; each stage method returns the events to write."""

    def __init__(
        self,
        *,
        info: RequestInfo,
        decision: AuditDecision,
        audit_id: str,
        request_uri: str,
        user: UserInfo,
        impersonated_user: UserInfo | None,
        source_ips: Iterable[str],
        user_agent: str,
        annotations: Mapping[str, str] | None,
        received_at: datetime,
        clock: Clock,
    ) -> None:
        self.info = info
        self.decision = decision
        self.audit_id = audit_id
        self.long_running = info.is_long_running
        self._clock = clock
        self._received = format_microtime(received_at)
        self._annotations: dict[str, str] = dict(annotations or {})
        self._object_ref = (
            ObjectReference(
                resource=info.resource,
                namespace=info.namespace,
                name=info.name,
                apiGroup=info.api_group,
                apiVersion=info.api_version,
                subresource=info.subresource,
            )
            if info.is_resource_request
            else None
        )
        self._request_uri = request_uri
        self._user = user
        self._impersonated = impersonated_user
        self._source_ips = list(source_ips)
        self._user_agent = truncate_user_agent(user_agent)
        self._request_body = _EMPTY
        self._response_body = _EMPTY
        self._status: Status | None = None
        self._started = False
        self._finished = False

    @property
    def level(self) -> Level:
        """The level the policy chose for this request."""
        return self.decision.level

    def annotate(self, key: str, value: str) -> None:
        """Add an audit annotation (kept for every later stage); an existing key keeps its first value."""
        self._annotations.setdefault(key, value)

    def log_request_body(self, body: bytes | msgspec.Raw) -> None:
        """Keep the decoded request object; its metadata completes the objectRef (name of a create, uid, …)."""
        raw = _as_raw(body)
        self._request_body = raw
        ref = self._object_ref
        if ref is None or self.info.verb == "patch":
            return
        head = _head(raw)
        meta = head.metadata if head is not None else None
        if meta is None:
            return
        self._object_ref = msgspec.structs.replace(
            ref,
            name=ref.name or meta.name,
            namespace=ref.namespace or meta.namespace,
            uid=ref.uid or meta.uid,
            resourceVersion=ref.resourceVersion or meta.resourceVersion,
        )

    def log_response(self, status_code: int, body: bytes | msgspec.Raw | None = None) -> None:
        """Keep the response: a metav1.Status body fills responseStatus, any other body is the responseObject."""
        raw = _as_raw(body)
        self._response_body = raw or _EMPTY
        head = _head(raw)
        status = _status_of(raw) if head is not None and head.kind == "Status" else None
        if status is not None:
            self._status = Status(
                metadata={},
                status=status.status,
                message=status.message,
                reason=status.reason,
                details=status.details,
                code=status_code,
            )
        else:
            self._set_code(status_code)

    def _set_code(self, status_code: int) -> None:
        if self._status is None:
            self._status = Status(metadata={}, code=status_code)
        elif self._status.code != status_code:
            self._status = msgspec.structs.replace(self._status, code=status_code)

    def _event(self, stage: Stage, stage_timestamp: str) -> Event | None:
        decision = self.decision
        if decision.level is Level.NONE or stage in decision.omit_stages:
            return None
        bodies = stage is not Stage.REQUEST_RECEIVED
        event = Event(
            level=Level.REQUEST_RESPONSE,
            auditID=self.audit_id,
            stage=stage,
            requestURI=self._request_uri,
            verb=self.info.verb,
            user=self._user,
            impersonatedUser=self._impersonated,
            sourceIPs=list(self._source_ips),
            userAgent=self._user_agent,
            objectRef=self._object_ref,
            responseStatus=self._status if stage is not Stage.REQUEST_RECEIVED else None,
            requestObject=self._request_body if bodies else _EMPTY,
            responseObject=self._response_body if bodies else _EMPTY,
            requestReceivedTimestamp=self._received,
            stageTimestamp=stage_timestamp,
            annotations=dict(self._annotations),
        )
        return record(event, decision)

    def _emit(self, stage: Stage) -> list[Event]:
        timestamp = self._received if stage is Stage.REQUEST_RECEIVED else format_microtime(self._clock())
        event = self._event(stage, timestamp)
        return [] if event is None else [event]

    def received(self) -> list[Event]:
        """The RequestReceived event: no bodies, no response status yet."""
        return self._emit(Stage.REQUEST_RECEIVED)

    def started(self, status_code: int = 200) -> list[Event]:
        """The ResponseStarted event, for long-running requests only, when the response headers go out."""
        self._set_code(status_code)
        if not self.long_running or self._started or self._finished:
            return []
        self._started = True
        return self._emit(Stage.RESPONSE_STARTED)

    def complete(self, status_code: int | None = None, body: bytes | msgspec.Raw | None = None) -> list[Event]:
        """The ResponseComplete event (after a ResponseStarted for a long-running request that had none)."""
        if self._finished:
            return []
        if body is not None:
            self.log_response(200 if status_code is None else status_code, body)
        elif status_code is not None:
            self._set_code(status_code)
        events: list[Event] = []
        if self._status is None:
            self._status = Status(metadata={}, status="Success", message="Connection closed early", code=200)
        if self.long_running and not self._started:
            self._started = True
            events += self._emit(Stage.RESPONSE_STARTED)
        self._finished = True
        return events + self._emit(Stage.RESPONSE_COMPLETE)

    def panic(self, reason: object) -> list[Event]:
        """The Panic event: the handler failed; the response is an internal error."""
        if self._finished:
            return []
        self._finished = True
        self._status = Status(
            metadata={},
            status="Failure",
            message=f"APIServer panic'd: {reason}",
            reason="InternalError",
            code=500,
        )
        return self._emit(Stage.PANIC)


class EventBuilder:
    """Starts request recorders; holds the clock and the audit ID source shared by all requests."""

    def __init__(self, clock: Clock = utc_now, new_audit_id: Callable[[], str] = random_audit_id) -> None:
        self.clock = clock
        self.new_audit_id = new_audit_id

    def request(
        self,
        *,
        method: str,
        url: str,
        user: UserInfo,
        decision: AuditDecision | None = None,
        policy: CompiledPolicy | None = None,
        info: RequestInfo | None = None,
        impersonated_user: UserInfo | None = None,
        source_ips: Iterable[str] = (),
        user_agent: str = "",
        audit_id: str | None = None,
        annotations: Mapping[str, str] | None = None,
        received_at: datetime | None = None,
    ) -> RequestRecorder:
        """Begin one request; the decision is given or evaluated from `policy` (one of them is required)."""
        if info is None:
            info = resolve_request_info(method, url)
        if decision is None:
            if policy is None:
                raise TypeError("EventBuilder.request needs a decision or a policy")
            decision = decide(policy, info, user)
        return RequestRecorder(
            info=info,
            decision=decision,
            audit_id=audit_id or self.new_audit_id(),
            request_uri=request_uri(url),
            user=user,
            impersonated_user=impersonated_user,
            source_ips=source_ips,
            user_agent=user_agent,
            annotations=annotations,
            received_at=received_at if received_at is not None else self.clock(),
            clock=self.clock,
        )

    def events(
        self,
        *,
        method: str,
        url: str,
        user: UserInfo,
        status_code: int = 200,
        request_body: bytes | msgspec.Raw | None = None,
        response_body: bytes | msgspec.Raw | None = None,
        **request: Any,
    ) -> list[Event]:
        """Every event of one completed request, in stage order (a convenience over `request`)."""
        recorder = self.request(method=method, url=url, user=user, **request)
        events = recorder.received()
        if request_body is not None:
            recorder.log_request_body(request_body)
        recorder.log_response(status_code, response_body)
        events += recorder.started(status_code)
        events += recorder.complete()
        return events


__all__ = [
    "Clock",
    "EventBuilder",
    "RequestRecorder",
    "attributes_for",
    "decide",
    "random_audit_id",
    "request_uri",
    "truncate_user_agent",
    "utc_now",
]
