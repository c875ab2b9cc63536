"""Events per stage and level, following the apiserver's audit filter (stages, bodies, timestamps, IDs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubetrail.emit.builder import EventBuilder, request_uri, truncate_user_agent
from kubetrail.model.codec import encode_event
from kubetrail.model.event import Event, Level, Stage, UserInfo
from kubetrail.policy.evaluate import AuditDecision, compile_policy
from kubetrail.policy.load import load_policy_bytes

START = datetime(2026, 3, 19, 10, 30, 0, 50_000, tzinfo=UTC)
JANE = UserInfo(username="jane", uid="u-1", groups=["devs", "system:authenticated"])
POD = (
    b'{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-0","namespace":"prod",'
    b'"managedFields":[{"manager":"kubectl"}]},"spec":{}}'
)


def ticking_clock(step: timedelta = timedelta(milliseconds=5)) -> Iterator[datetime]:
    moment = START
    while True:
        yield moment
        moment += step


def builder() -> EventBuilder:
    ticks = ticking_clock()
    ids = iter(f"00000000-0000-4000-8000-{n:012d}" for n in range(1, 1000))
    return EventBuilder(clock=lambda: next(ticks), new_audit_id=lambda: next(ids))


def decision(level: Level, omit: tuple[Stage, ...] = (), managed: bool = False) -> AuditDecision:
    return AuditDecision(level=level, omit_stages=omit, omit_managed_fields=managed, rule_index=0)


def wire(event: Event) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(encode_event(event))
    return result


def test_metadata_get_gives_received_and_complete_with_one_audit_id() -> None:
    events = builder().events(
        method="GET",
        url="/api/v1/namespaces/prod/pods/web-0",
        user=JANE,
        decision=decision(Level.METADATA),
        source_ips=["10.0.0.7"],
        user_agent="kubectl/v1.33.0",
        response_body=POD,
    )
    assert [event.stage for event in events] == [Stage.REQUEST_RECEIVED, Stage.RESPONSE_COMPLETE]
    received, complete = (wire(event) for event in events)
    assert received["auditID"] == complete["auditID"] == "00000000-0000-4000-8000-000000000001"
    assert received["level"] == complete["level"] == "Metadata"
    assert received["verb"] == "get"
    assert received["objectRef"] == {"resource": "pods", "namespace": "prod", "name": "web-0", "apiVersion": "v1"}
    assert received["requestReceivedTimestamp"] == received["stageTimestamp"] == "2026-03-19T10:30:00.050000Z"
    assert complete["requestReceivedTimestamp"] == "2026-03-19T10:30:00.050000Z"
    assert complete["stageTimestamp"] == "2026-03-19T10:30:00.055000Z"
    assert "responseStatus" not in received
    assert complete["responseStatus"] == {"metadata": {}, "code": 200}
    assert "requestObject" not in complete and "responseObject" not in complete
    assert received["sourceIPs"] == ["10.0.0.7"] and received["userAgent"] == "kubectl/v1.33.0"
    assert received["user"] == {"username": "jane", "uid": "u-1", "groups": ["devs", "system:authenticated"]}


def test_request_response_create_keeps_bodies_only_after_the_request_is_read() -> None:
    events = builder().events(
        method="POST",
        url="/api/v1/namespaces/prod/pods?fieldManager=kubectl",
        user=JANE,
        decision=decision(Level.REQUEST_RESPONSE),
        request_body=POD,
        response_body=POD,
        status_code=201,
    )
    received, complete = (wire(event) for event in events)
    assert "requestObject" not in received
    assert complete["requestObject"]["metadata"]["name"] == "web-0"
    assert complete["responseObject"]["kind"] == "Pod"
    assert complete["responseStatus"]["code"] == 201
    assert complete["verb"] == "create"
    assert complete["requestURI"] == "/api/v1/namespaces/prod/pods?fieldManager=kubectl"
    # the created object's name comes from its body, so policies and readers see it
    assert complete["objectRef"]["name"] == "web-0"


def test_request_level_drops_the_response_body_and_omit_managed_fields_strips_them() -> None:
    events = builder().events(
        method="PUT",
        url="/api/v1/namespaces/prod/pods/web-0",
        user=JANE,
        decision=decision(Level.REQUEST, managed=True),
        request_body=POD,
        response_body=POD,
    )
    complete = wire(events[-1])
    assert "responseObject" not in complete
    assert complete["requestObject"]["metadata"] == {"name": "web-0", "namespace": "prod"}


def test_omitted_stages_and_level_none_write_nothing() -> None:
    events = builder().events(
        method="GET",
        url="/api/v1/pods",
        user=JANE,
        decision=decision(Level.METADATA, omit=(Stage.REQUEST_RECEIVED,)),
    )
    assert [event.stage for event in events] == [Stage.RESPONSE_COMPLETE]
    none = builder().events(method="GET", url="/api/v1/pods", user=JANE, decision=decision(Level.NONE))
    assert none == []


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/api/v1/namespaces/prod/pods?watch=true"),
        ("GET", "/api/v1/namespaces/prod/pods/web-0/exec?command=sh"),
        ("POST", "/api/v1/namespaces/prod/pods/web-0/attach"),
        ("POST", "/api/v1/namespaces/prod/pods/web-0/portforward"),
        ("GET", "/api/v1/namespaces/prod/services/web/proxy/healthz"),
    ],
)
def test_long_running_requests_have_a_response_started_stage(method: str, url: str) -> None:
    events = builder().events(method=method, url=url, user=JANE, decision=decision(Level.METADATA), status_code=101)
    assert [event.stage for event in events] == [
        Stage.REQUEST_RECEIVED,
        Stage.RESPONSE_STARTED,
        Stage.RESPONSE_COMPLETE,
    ]
    started = wire(events[1])
    assert started["responseStatus"]["code"] == 101
    assert len({event.auditID for event in events}) == 1
    assert events[0].stageTimestamp < events[1].stageTimestamp < events[2].stageTimestamp


def test_short_requests_have_no_response_started_stage() -> None:
    recorder = builder().request(
        method="GET", url="/api/v1/namespaces/prod/pods/web-0", user=JANE, decision=decision(Level.METADATA)
    )
    assert recorder.started(200) == []
    assert [event.stage for event in recorder.complete()] == [Stage.RESPONSE_COMPLETE]
    assert recorder.complete() == []


def test_watch_closed_before_headers_gets_a_faked_started_event() -> None:
    recorder = builder().request(method="GET", url="/api/v1/pods?watch=1", user=JANE, decision=decision(Level.METADATA))
    recorder.received()
    events = recorder.complete()
    assert [event.stage for event in events] == [Stage.RESPONSE_STARTED, Stage.RESPONSE_COMPLETE]
    assert wire(events[0])["responseStatus"] == {
        "metadata": {},
        "status": "Success",
        "message": "Connection closed early",
        "code": 200,
    }


def test_non_resource_requests_carry_no_object_ref_and_no_bodies() -> None:
    events = builder().events(
        method="GET",
        url="/healthz?verbose=1",
        user=UserInfo(username="system:anonymous", groups=["system:unauthenticated"]),
        decision=decision(Level.REQUEST_RESPONSE),
        response_body=b'{"ok":true}',
    )
    complete = wire(events[-1])
    assert complete["verb"] == "get"
    assert "objectRef" not in complete and "responseObject" not in complete
    assert complete["requestURI"] == "/healthz?verbose=1"


def test_error_status_bodies_fill_response_status() -> None:
    forbidden = (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"secrets \\"token\\" is forbidden","reason":"Forbidden",'
        b'"details":{"name":"token","kind":"secrets"},"code":403}'
    )
    events = builder().events(
        method="GET",
        url="/api/v1/namespaces/prod/secrets/token",
        user=JANE,
        decision=decision(Level.METADATA),
        response_body=forbidden,
        status_code=403,
    )
    status = wire(events[-1])["responseStatus"]
    assert status == {
        "metadata": {},
        "status": "Failure",
        "message": 'secrets "token" is forbidden',
        "reason": "Forbidden",
        "details": {"name": "token", "kind": "secrets"},
        "code": 403,
    }


def test_panic_stage_reports_an_internal_error() -> None:
    recorder = builder().request(method="DELETE", url="/api/v1/nodes/n1", user=JANE, decision=decision(Level.METADATA))
    recorder.received()
    events = recorder.panic("runtime error: invalid memory address")
    assert [event.stage for event in events] == [Stage.PANIC]
    status = wire(events[0])["responseStatus"]
    assert status["code"] == 500 and status["reason"] == "InternalError"
    assert status["message"] == "APIServer panic'd: runtime error: invalid memory address"
    assert recorder.complete() == []


def test_given_audit_id_annotations_impersonation_and_user_agent() -> None:
    long_agent = "x" * 2000
    recorder = builder().request(
        method="GET",
        url="https://10.0.0.1:6443/api/v1/namespaces/prod/secrets?limit=500#ignored",
        user=JANE,
        impersonated_user=UserInfo(username="system:serviceaccount:prod:deployer"),
        decision=decision(Level.METADATA),
        audit_id="5b1c0a2e-7f44-4e1b-9d4e-3a7e2c1f0b9d",
        annotations={"authorization.k8s.io/decision": "allow"},
        user_agent=long_agent,
    )
    recorder.annotate("authorization.k8s.io/reason", 'RBAC: allowed by RoleBinding "read"')
    events = recorder.received() + recorder.complete(200)
    for event in events:
        data = wire(event)
        assert data["auditID"] == "5b1c0a2e-7f44-4e1b-9d4e-3a7e2c1f0b9d"
        assert data["impersonatedUser"] == {"username": "system:serviceaccount:prod:deployer"}
        assert data["requestURI"] == "/api/v1/namespaces/prod/secrets?limit=500"
        assert data["userAgent"] == "x" * 1024 + "...TRUNCATED"
        assert data["verb"] == "list"
    assert events[0].annotations == {
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": 'RBAC: allowed by RoleBinding "read"',
    }


def test_policy_decides_the_level_per_request() -> None:
    policy = compile_policy(
        load_policy_bytes(
            b"""
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  nonResourceURLs: ["/healthz*"]
- level: Metadata
  resources: [{group: "", resources: ["secrets"]}]
- level: RequestResponse
  verbs: ["create"]
"""
        ).policy
    )
    make = builder()
    secret = make.events(method="GET", url="/api/v1/namespaces/a/secrets/s", user=JANE, policy=policy)
    assert [(event.stage, event.level) for event in secret] == [(Stage.RESPONSE_COMPLETE, Level.METADATA)]
    assert make.events(method="GET", url="/healthz", user=JANE, policy=policy) == []
    created = make.events(method="POST", url="/api/v1/namespaces/prod/pods", user=JANE, policy=policy, request_body=POD)
    assert created[0].level is Level.REQUEST_RESPONSE and created[0].requestObject


def test_request_uri_and_user_agent_helpers() -> None:
    assert request_uri("http://h:1/api/v1/pods?watch=1#x") == "/api/v1/pods?watch=1"
    assert request_uri("https://h") == "/"
    assert request_uri("/version") == "/version"
    assert truncate_user_agent("short") == "short"
    assert truncate_user_agent("é" * 600).endswith("...TRUNCATED")
