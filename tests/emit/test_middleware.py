"""The ASGI audit middleware on a real Starlette app served by uvicorn on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from kubetrail.emit.buffered import BatchConfig, Buffered
from kubetrail.emit.middleware import AuditMiddleware, Scope, request_url, source_ips
from kubetrail.emit.webhook import new_webhook_backend
from kubetrail.model.event import Event, Level, Stage, UserInfo
from kubetrail.model.policy import GroupResources, Policy, PolicyRule

from .backends import Recording
from .helpers_http import LiveServer, Receiver, serving
from .test_webhook import http_config

POLICY = Policy(
    rules=[
        PolicyRule(level="None", nonResourceURLs=["/livez"]),
        PolicyRule(level="None", users=["system:kube-proxy"]),
        PolicyRule(level="RequestResponse", resources=[GroupResources(resources=["configmaps"])]),
        PolicyRule(level="Request", resources=[GroupResources(resources=["secrets"])]),
        PolicyRule(level="RequestResponse", nonResourceURLs=["/healthz"]),
        PolicyRule(level="Metadata"),
    ]
)

CALLS: list[str] = []


async def list_pods(request: Request) -> Response:
    CALLS.append("pods")
    return JSONResponse({"kind": "PodList", "apiVersion": "v1", "items": []})


async def create_object(request: Request) -> Response:
    body = await request.json()
    body.setdefault("metadata", {})["uid"] = "6f9619ff-8b86-d011-b42d-00cf4fc964ff"
    return JSONResponse(body, status_code=201)


async def get_configmap(request: Request) -> Response:
    name = request.path_params["name"]
    if name == "boom":
        raise RuntimeError("handler crashed")
    if name == "missing":
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": 'configmaps "missing" not found',
            "reason": "NotFound",
            "details": {"name": "missing", "kind": "configmaps"},
            "code": 404,
        }
        return JSONResponse(status, status_code=404)
    return JSONResponse({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": name}, "data": {"k": "v"}})


async def list_configmaps(request: Request) -> Response:
    if request.query_params.get("watch") == "true":

        async def stream() -> AsyncIterator[bytes]:
            for n in range(3):
                yield json.dumps(
                    {"type": "ADDED", "object": {"kind": "ConfigMap", "metadata": {"name": f"c{n}"}}}
                ).encode()

        return StreamingResponse(stream(), media_type="application/json")
    return JSONResponse({"kind": "ConfigMapList", "apiVersion": "v1", "items": []})


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


ROUTES = [
    Route("/api/v1/namespaces/{ns}/pods", list_pods),
    Route("/api/v1/namespaces/{ns}/configmaps", list_configmaps),
    Route("/api/v1/namespaces/{ns}/configmaps", create_object, methods=["POST"]),
    Route("/api/v1/namespaces/{ns}/secrets", create_object, methods=["POST"]),
    Route("/api/v1/namespaces/{ns}/configmaps/{name}", get_configmap),
    Route("/healthz", healthz),
    Route("/livez", healthz),
]


async def header_user(scope: Scope) -> UserInfo | None:
    """Test resolver: the user named by a header (an authenticating proxy's job in real life)."""
    for key, value in scope["headers"]:
        if key == b"x-test-user":
            return UserInfo(username=value.decode(), groups=["system:authenticated"])
    return None


def app_with(backend: Any, policy: Policy = POLICY, **options: Any) -> Starlette:
    return Starlette(
        routes=ROUTES,
        middleware=[Middleware(AuditMiddleware, policy=policy, backends=backend, user_resolver=header_user, **options)],
    )


@pytest.fixture(scope="module")
def recording() -> Recording:
    return Recording()


@pytest.fixture(scope="module")
def client(recording: Recording) -> Iterator[httpx.Client]:
    with serving(app_with(recording)) as live, httpx.Client(base_url=f"http://127.0.0.1:{live.port}") as http:
        yield http


def events_of(recording: Recording, audit_id: str, *, final: bool = True) -> list[Event]:
    """The events of one request, once its last stage has reached the backend."""
    deadline = time.monotonic() + 10
    while True:
        found = [event for event in recording.events if event.auditID == audit_id]
        if not final or any(event.stage in (Stage.RESPONSE_COMPLETE, Stage.PANIC) for event in found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no final event for {audit_id}: {found}")
        time.sleep(0.01)


def stages(events: Sequence[Event]) -> list[str]:
    return [str(event.stage) for event in events]


def test_metadata_level_request(client: httpx.Client, recording: Recording) -> None:
    response = client.get(
        "/api/v1/namespaces/default/pods?limit=500",
        headers={"x-test-user": "alice", "user-agent": "kubectl/v1.33.0"},
    )
    assert response.status_code == 200
    audit_id = response.headers["audit-id"]
    events = events_of(recording, audit_id)
    assert stages(events) == ["RequestReceived", "ResponseComplete"]
    for event in events:
        assert event.level is Level.METADATA
        assert event.verb == "list"
        assert event.requestURI == "/api/v1/namespaces/default/pods?limit=500"
        assert event.user == UserInfo(username="alice", groups=["system:authenticated"])
        assert event.sourceIPs == ["127.0.0.1"]
        assert event.userAgent == "kubectl/v1.33.0"
        assert event.objectRef is not None
        assert (event.objectRef.resource, event.objectRef.namespace, event.objectRef.apiVersion) == (
            "pods",
            "default",
            "v1",
        )
        assert not event.requestObject and not event.responseObject
    assert events[0].responseStatus is None
    assert events[1].responseStatus is not None and events[1].responseStatus.code == 200
    assert events[0].requestReceivedTimestamp == events[1].requestReceivedTimestamp


def test_audit_id_header_is_reused_and_echoed(client: httpx.Client, recording: Recording) -> None:
    response = client.get("/api/v1/namespaces/default/pods", headers={"Audit-ID": "my-trace-42"})
    assert response.headers["audit-id"] == "my-trace-42"
    assert {event.auditID for event in events_of(recording, "my-trace-42")} == {"my-trace-42"}


def test_request_level_keeps_the_request_body_only(client: httpx.Client, recording: Recording) -> None:
    secret = {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "db"}, "data": {"password": "aHVudGVyMg=="}}
    response = client.post("/api/v1/namespaces/prod/secrets", json=secret)
    assert response.status_code == 201
    received, complete = events_of(recording, response.headers["audit-id"])
    assert received.stage is Stage.REQUEST_RECEIVED and not received.requestObject
    assert complete.level is Level.REQUEST and complete.verb == "create"
    assert json.loads(bytes(complete.requestObject)) == secret
    assert not complete.responseObject
    assert complete.objectRef is not None and complete.objectRef.name == "db"  # from the created object's metadata
    assert complete.responseStatus is not None and complete.responseStatus.code == 201


def test_request_response_level_keeps_both_bodies(client: httpx.Client, recording: Recording) -> None:
    configmap = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "settings"}, "data": {"a": "1"}}
    response = client.post("/api/v1/namespaces/prod/configmaps", json=configmap)
    _, complete = events_of(recording, response.headers["audit-id"])
    assert complete.level is Level.REQUEST_RESPONSE
    assert json.loads(bytes(complete.requestObject)) == configmap
    assert json.loads(bytes(complete.responseObject)) == response.json()
    assert json.loads(bytes(complete.responseObject))["metadata"]["uid"] == "6f9619ff-8b86-d011-b42d-00cf4fc964ff"


def test_error_status_body_fills_response_status(client: httpx.Client, recording: Recording) -> None:
    response = client.get("/api/v1/namespaces/prod/configmaps/missing")
    assert response.status_code == 404
    _, complete = events_of(recording, response.headers["audit-id"])
    status = complete.responseStatus
    assert status is not None
    assert (status.code, status.status, status.reason) == (404, "Failure", "NotFound")
    assert status.message == 'configmaps "missing" not found'


def test_non_resource_requests_never_carry_bodies(client: httpx.Client, recording: Recording) -> None:
    response = client.get("/healthz")
    assert response.text == "ok"
    events = events_of(recording, response.headers["audit-id"])
    assert [event.level for event in events] == [Level.REQUEST_RESPONSE] * 2
    assert all(event.objectRef is None and not event.responseObject for event in events)
    assert events[-1].verb == "get"


def test_level_none_records_nothing_but_still_echoes_the_id(client: httpx.Client, recording: Recording) -> None:
    response = client.get("/livez")
    proxy = client.get("/api/v1/namespaces/default/pods", headers={"x-test-user": "system:kube-proxy"})
    client.get("/healthz")  # a later, audited request: once its events are in, the earlier ones would be too
    assert response.status_code == 200 and response.headers["audit-id"]
    assert proxy.status_code == 200
    recorded = {event.auditID for event in recording.events}
    assert response.headers["audit-id"] not in recorded
    assert proxy.headers["audit-id"] not in recorded


def test_watch_is_long_running_and_its_stream_is_not_recorded(client: httpx.Client, recording: Recording) -> None:
    response = client.get("/api/v1/namespaces/prod/configmaps?watch=true")
    assert response.status_code == 200 and b"ADDED" in response.content
    events = events_of(recording, response.headers["audit-id"])
    assert stages(events) == ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    assert events[0].verb == "watch"
    assert all(not event.responseObject for event in events)
    assert events[1].responseStatus is not None and events[1].responseStatus.code == 200


def test_handler_exception_gives_a_panic_event(client: httpx.Client, recording: Recording) -> None:
    # uvicorn drops the connection after an app error: do not leave it in the shared pool.
    response = client.get(
        "/api/v1/namespaces/prod/configmaps/boom", headers={"Audit-ID": "crash-1", "Connection": "close"}
    )
    assert response.status_code == 500
    events = events_of(recording, "crash-1")
    assert stages(events) == ["RequestReceived", "Panic"]
    status = events[1].responseStatus
    assert status is not None and status.code == 500 and status.reason == "InternalError"
    assert "handler crashed" in status.message


def test_source_ips_follow_forwarding_headers(client: httpx.Client, recording: Recording) -> None:
    response = client.get(
        "/api/v1/namespaces/default/pods",
        headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.1", "X-Real-Ip": "10.0.0.1"},
    )
    (event, *_) = events_of(recording, response.headers["audit-id"])
    assert event.sourceIPs == ["203.0.113.9", "10.0.0.1", "127.0.0.1"]


def test_policy_omit_stages_are_honoured(recording: Recording) -> None:
    policy = Policy(omitStages=["RequestReceived"], rules=[PolicyRule(level="Metadata")])
    with serving(app_with(recording, policy)) as live:
        response = httpx.get(f"http://127.0.0.1:{live.port}/api/v1/namespaces/default/pods")
    assert stages(events_of(recording, response.headers["audit-id"])) == ["ResponseComplete"]


def test_bodies_beyond_the_limit_are_left_out_and_marked_truncated(recording: Recording) -> None:
    with (
        serving(app_with(recording, max_body_bytes=200)) as live,
        httpx.Client(base_url=f"http://127.0.0.1:{live.port}") as http,
    ):
        big = {"kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"k": "x" * 500}}
        response = http.post("/api/v1/namespaces/prod/configmaps", json=big)
        assert response.status_code == 201
        _, complete = events_of(recording, response.headers["audit-id"])
        assert not complete.requestObject and not complete.responseObject
        assert complete.annotations == {"audit.k8s.io/truncated": "true"}
        assert json.loads(response.content)["metadata"]["name"] == "big"  # the app saw the whole body
        small = http.get("/api/v1/namespaces/prod/configmaps/small")
        _, complete = events_of(recording, small.headers["audit-id"])
        assert json.loads(bytes(complete.responseObject))["metadata"]["name"] == "small"


def test_strict_backend_failure_at_request_received_fails_the_request() -> None:
    refusing = Recording(accept=False)
    CALLS.clear()
    with serving(app_with(refusing)) as live:
        response = httpx.get(f"http://127.0.0.1:{live.port}/api/v1/namespaces/default/pods")
    assert response.status_code == 500
    assert response.text == 'Internal Server Error: "/api/v1/namespaces/default/pods": failed to store audit event\n'
    assert CALLS == []  # the handler never ran
    assert stages(refusing.events) == ["RequestReceived"]


class Gated(Recording):
    """A delegate that blocks until released, like a receiver that stopped answering."""

    def __init__(self) -> None:
        super().__init__("gated")
        self.entered = threading.Event()
        self.gate = threading.Event()

    def process_events(self, events: Sequence[Event]) -> bool:
        self.entered.set()
        self.gate.wait(30)
        return super().process_events(events)


def test_batch_mode_never_holds_a_response_for_a_stuck_backend() -> None:
    stuck = Gated()
    buffered = Buffered(stuck, BatchConfig(max_batch_size=1, max_batch_wait=0.0, throttle_enable=False))
    buffered.run()
    try:
        with serving(app_with(buffered)) as live, httpx.Client(base_url=f"http://127.0.0.1:{live.port}") as http:
            first = http.get("/api/v1/namespaces/default/pods")
            assert stuck.entered.wait(10)
            answers = [http.get("/api/v1/namespaces/default/pods") for _ in range(3)]
            assert not stuck.gate.is_set()
            assert all(answer.status_code == 200 for answer in [first, *answers])
    finally:
        stuck.gate.set()
        buffered.shutdown()
    assert len(stuck.events) == 8  # RequestReceived + ResponseComplete of 4 requests, all delivered


def test_lifespan_runs_and_flushes_backends_into_a_real_webhook() -> None:
    receiver = Receiver()
    with serving(receiver.app) as audit_sink:
        webhook = new_webhook_backend(http_config(audit_sink.url))  # batch mode: 30 s max wait, 400 per batch
        app_server = LiveServer(app_with(webhook), lifespan="on").start()
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{app_server.port}") as http:
                ids = [http.get("/api/v1/namespaces/default/pods").headers["audit-id"] for _ in range(5)]
        finally:
            app_server.stop()  # lifespan shutdown flushes the buffer
    items = receiver.items()
    assert sorted(item["auditID"] for item in items) == sorted(ids * 2)
    assert {item["stage"] for item in items} == {"RequestReceived", "ResponseComplete"}


def test_request_url_keeps_the_wire_form() -> None:
    scope = {"type": "http", "path": "/api/v1/namespaces/a b/pods", "raw_path": b"/api/v1/namespaces/a%20b/pods"}
    assert request_url({**scope, "query_string": b"watch=1"}) == "/api/v1/namespaces/a%20b/pods?watch=1"
    assert request_url({"type": "http", "path": "/healthz"}) == "/healthz"


@pytest.mark.parametrize(
    ("headers", "client", "expected"),
    [
        ([], ("10.0.0.5", 5555), ["10.0.0.5"]),
        ([(b"x-forwarded-for", b"1.1.1.1")], ("1.1.1.1", 1), ["1.1.1.1"]),
        ([(b"x-forwarded-for", b"garbage, 2.2.2.2")], ("10.0.0.5", 1), ["2.2.2.2", "10.0.0.5"]),
        ([(b"x-real-ip", b"3.3.3.3")], ("10.0.0.5", 1), ["3.3.3.3", "10.0.0.5"]),
        ([(b"x-forwarded-for", b"::1")], None, ["::1"]),
    ],
)
def test_source_ips_rules(headers: list[tuple[bytes, bytes]], client: Any, expected: list[str]) -> None:
    assert source_ips({"headers": headers, "client": client}) == expected


async def _run_asgi(app: Any, messages: list[dict[str, Any]], method: str = "POST") -> list[dict[str, Any]]:
    """Call an ASGI app with the given request messages (then a disconnect); the messages it sent back."""
    pending = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": "/api/v1/namespaces/prod/configmaps", "headers": []}
    await app(scope, receive, send)
    return sent


def _asgi_app(seen: list[dict[str, Any]], *, read: bool) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if read:
            while True:
                message = await receive()
                seen.append(message)
                if message["type"] != "http.request" or not message.get("more_body"):
                    break
        await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


def test_the_request_body_is_read_ahead_and_replayed_message_for_message() -> None:
    import anyio

    parts = [b'{"kind": "ConfigMap", ', b'"metadata": {"name": "chunked"}', b"}"]
    messages = [{"type": "http.request", "body": part, "more_body": n < 2} for n, part in enumerate(parts)]
    for read in (True, False):
        recording, seen = Recording(), []
        audited = AuditMiddleware(_asgi_app(seen, read=read), POLICY, recording, manage_backends=False)
        sent = anyio.run(_run_asgi, audited, [dict(message) for message in messages])
        assert sent[0]["status"] == 201
        assert seen == (messages if read else [])
        complete = recording.events[-1]
        assert json.loads(bytes(complete.requestObject)) == {"kind": "ConfigMap", "metadata": {"name": "chunked"}}
        assert complete.objectRef is not None and complete.objectRef.name == "chunked"


def test_a_client_gone_during_the_read_ahead_reaches_the_app() -> None:
    import anyio

    recording, seen = Recording(), []
    audited = AuditMiddleware(_asgi_app(seen, read=True), POLICY, recording, manage_backends=False)
    anyio.run(_run_asgi, audited, [{"type": "http.request", "body": b'{"kind": ', "more_body": True}])
    assert seen == [{"type": "http.request", "body": b'{"kind": ', "more_body": True}, {"type": "http.disconnect"}]
    assert not recording.events[-1].requestObject  # half a document is no document
