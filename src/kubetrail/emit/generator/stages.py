"""Turn one planned request into its audit events, one per stage, fully detailed (level RequestResponse).

As kube-apiserver does: `RequestReceived` is written before authorization (no annotations, no
bodies, no status, and for a create no object name yet); long-running requests get `ResponseStarted`
when headers are sent; `ResponseComplete` carries the status, the bodies and the authorization
annotations. A request failing authentication is logged once, at `ResponseStarted`, with an empty user.
"""

from __future__ import annotations

import msgspec
from msgspec.structs import replace

from kubetrail.emit.generator.calls import Call
from kubetrail.emit.generator.clock import Clock
from kubetrail.model.event import API_VERSION_V1, NO_BODY, Event, Level, Stage, Status, UserInfo

DECISION = "authorization.k8s.io/decision"
REASON = "authorization.k8s.io/reason"
_FULL = Level.REQUEST_RESPONSE
_ANONYMOUS_FAILURE = UserInfo()
_SUCCESS: dict[int, Status] = {}


def _status(call: Call) -> Status:
    if call.code < 400:
        cached = _SUCCESS.get(call.code)
        if cached is None:
            cached = _SUCCESS[call.code] = Status(metadata={}, code=call.code)
        return cached
    if call.code == 401:
        return Status(metadata={}, message=call.message, code=401)
    details = msgspec.Raw(call.details) if call.details else NO_BODY
    return Status(
        metadata={}, status="Failure", message=call.message, reason=call.status_reason, details=details, code=call.code
    )


def request_events(call: Call, audit_id: str, start_us: int, clock: Clock) -> list[tuple[int, Event]]:
    """The (time in µs, event) pairs of one request that arrived at `start_us`, in stage order."""
    actor = call.actor
    received = clock.micro(start_us)
    started_us = start_us + call.latency_us
    if call.code == 401:
        event = Event(
            level=_FULL,
            auditID=audit_id,
            stage=Stage.RESPONSE_STARTED,
            requestURI=call.uri,
            verb=call.verb,
            user=_ANONYMOUS_FAILURE,
            sourceIPs=actor.source_ips,
            userAgent=actor.user_agent,
            objectRef=call.ref,
            responseStatus=_status(call),
            requestReceivedTimestamp=received,
            stageTimestamp=clock.micro(started_us),
        )
        return [(started_us, event)]
    received_event = Event(
        apiVersion=API_VERSION_V1,
        level=_FULL,
        auditID=audit_id,
        stage=Stage.REQUEST_RECEIVED,
        requestURI=call.uri,
        verb=call.verb,
        user=actor.user,
        impersonatedUser=call.impersonated,
        sourceIPs=actor.source_ips,
        userAgent=actor.user_agent,
        objectRef=call.ref,
        requestReceivedTimestamp=received,
        stageTimestamp=received,
    )
    annotations = {DECISION: call.decision, REASON: actor.reason if call.reason is None else call.reason}
    if call.annotations:
        annotations.update(call.annotations)
    status = _status(call)
    if call.ref is not None:
        request_body = msgspec.Raw(call.request_body) if call.request_body else NO_BODY
        response_body = msgspec.Raw(call.response_body) if call.response_body else NO_BODY
    else:
        request_body = response_body = NO_BODY
    if not call.long_running:
        return [
            (start_us, received_event),
            (
                started_us,
                replace(
                    received_event,
                    stage=Stage.RESPONSE_COMPLETE,
                    objectRef=call.final_ref,
                    responseStatus=status,
                    requestObject=request_body,
                    responseObject=response_body,
                    stageTimestamp=clock.micro(started_us),
                    annotations=annotations,
                ),
            ),
        ]
    done_us = started_us + call.session_us
    started_event = replace(
        received_event,
        stage=Stage.RESPONSE_STARTED,
        objectRef=call.final_ref,
        responseStatus=status,
        requestObject=request_body,
        stageTimestamp=clock.micro(started_us),
        annotations=annotations,
    )
    done_event = replace(
        started_event,
        stage=Stage.RESPONSE_COMPLETE,
        responseObject=response_body,
        stageTimestamp=clock.micro(done_us),
        annotations=dict(annotations),
    )
    return [(start_us, received_event), (started_us, started_event), (done_us, done_event)]
