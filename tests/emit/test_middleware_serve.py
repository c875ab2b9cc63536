"""The audit middlewares end to end, through the public API only: FastAPI and Starlette apps under uvicorn and a Flask
app under werkzeug, on loopback, audited into the webhook backend, which posts to a real `kubetrail serve`; the
events in serve's store are checked against the policy (stages, levels, bodies, users, Audit-ID)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Body, FastAPI
from flask import Flask, jsonify
from flask import request as flask_request
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from werkzeug.serving import make_server

import kubetrail
from kubetrail.serve.config import build_config
from kubetrail.serve.server import BackgroundServer

from .helpers_http import LiveServer

POLICY = kubetrail.load_policy_bytes(
    b"""
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    nonResourceURLs: ["/healthz"]
  - level: RequestResponse
    resources: [{group: "", resources: ["configmaps"]}]
  - level: Request
    resources: [{group: "", resources: ["secrets"]}]
    omitStages: ["RequestReceived"]
  - level: Metadata
"""
)
MAX_BODY = 4096
PRICES = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "prices"}, "data": {"apple": "3"}}
SECRET = {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "db"}, "data": {"password": "aHVudGVyMg=="}}
STREAMED = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "streamed"}, "data": {"k": "v" * 1000}}
LARGE = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "large"}, "data": {"k": "x" * 20_000}}
BASE = "/api/v1/namespaces/shop"


def user_of(headers: Any) -> kubetrail.UserInfo | None:
    name = headers.get("x-remote-user")
    return kubetrail.UserInfo(username=name, groups=["system:authenticated"]) if name else None


def asgi_user(scope: Any) -> kubetrail.UserInfo | None:
    return user_of({key.decode(): value.decode() for key, value in scope["headers"]})


async def async_asgi_user(scope: Any) -> kubetrail.UserInfo | None:
    return asgi_user(scope)


def webhook(serve_url: str, cluster: str) -> kubetrail.Backend:
    config = kubetrail.WebhookClientConfig(server=f"{serve_url}/audit/{cluster}")
    return kubetrail.new_webhook_backend(
        config, batch=kubetrail.BatchConfig(max_batch_size=100, max_batch_wait=0.05, throttle_enable=False)
    )


def configmap(name: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": name, "namespace": "shop"}, **extra}


# --- the same service in each framework ------------------------------------------------------------------------


def fastapi_app(backend: kubetrail.Backend) -> Any:
    app = FastAPI()
    app.add_middleware(
        kubetrail.AuditMiddleware,
        policy=POLICY,
        backends=backend,
        user_resolver=asgi_user,
        max_body_bytes=MAX_BODY,
    )

    @app.put(BASE + "/configmaps/{name}")
    async def replace(name: str, request: Request) -> dict[str, Any]:  # never reads the body
        request.scope["kubetrail.audit"].annotate("shop.example.com/handler", "replace")
        return configmap(name)

    @app.post(BASE + "/secrets", status_code=201)
    async def create_secret(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        return {**body, "metadata": {**body["metadata"], "uid": "u-1"}}

    @app.post(BASE + "/configmaps", status_code=201)
    async def create_configmap(request: Request) -> dict[str, Any]:
        received = b"".join([chunk async for chunk in request.stream()])
        return configmap(json.loads(received)["metadata"]["name"], received=len(received))

    @app.get(BASE + "/pods")
    async def list_pods() -> dict[str, Any]:
        return {"kind": "PodList", "apiVersion": "v1", "items": []}

    @app.get(BASE + "/configmaps/boom")
    async def crash() -> None:
        raise RuntimeError("handler crashed")

    @app.get("/healthz")
    async def healthz() -> Response:
        return PlainTextResponse("ok")

    return app


def starlette_app(backend: kubetrail.Backend) -> Any:
    async def replace(request: Request) -> Response:
        request.scope["kubetrail.audit"].annotate("shop.example.com/handler", "replace")
        return JSONResponse(configmap(request.path_params["name"]))

    async def create_secret(request: Request) -> Response:
        body = await request.json()
        return JSONResponse({**body, "metadata": {**body["metadata"], "uid": "u-1"}}, status_code=201)

    async def create_configmap(request: Request) -> Response:
        received = b"".join([chunk async for chunk in request.stream()])
        name = json.loads(received)["metadata"]["name"]
        return JSONResponse(configmap(name, received=len(received)), status_code=201)

    async def list_pods(request: Request) -> Response:
        return JSONResponse({"kind": "PodList", "apiVersion": "v1", "items": []})

    async def crash(request: Request) -> Response:
        raise RuntimeError("handler crashed")

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route(BASE + "/configmaps/boom", crash),
            Route(BASE + "/configmaps/{name}", replace, methods=["PUT"]),
            Route(BASE + "/secrets", create_secret, methods=["POST"]),
            Route(BASE + "/configmaps", create_configmap, methods=["POST"]),
            Route(BASE + "/pods", list_pods),
            Route("/healthz", healthz),
        ],
        middleware=[
            Middleware(
                kubetrail.AuditMiddleware,
                policy=POLICY,
                backends=backend,
                user_resolver=async_asgi_user,
                max_body_bytes=MAX_BODY,
            )
        ],
    )


def flask_app(backend: kubetrail.Backend) -> tuple[Flask, kubetrail.WSGIAuditMiddleware]:
    app = Flask(__name__)

    @app.put(BASE + "/configmaps/<name>")
    def replace(name: str) -> Any:
        flask_request.environ["kubetrail.audit"].annotate("shop.example.com/handler", "replace")
        return jsonify(configmap(name))

    @app.post(BASE + "/secrets")
    def create_secret() -> Any:
        body = flask_request.get_json()
        return jsonify({**body, "metadata": {**body["metadata"], "uid": "u-1"}}), 201

    @app.post(BASE + "/configmaps")
    def create_configmap() -> Any:
        received = flask_request.stream.read()
        return jsonify(configmap(json.loads(received)["metadata"]["name"], received=len(received))), 201

    @app.get(BASE + "/pods")
    def list_pods() -> Any:
        return jsonify({"kind": "PodList", "apiVersion": "v1", "items": []})

    @app.get(BASE + "/configmaps/boom")
    def crash() -> Any:
        raise RuntimeError("handler crashed")

    @app.get("/healthz")
    def healthz() -> Any:
        return "ok"

    audited = kubetrail.WSGIAuditMiddleware(
        app.wsgi_app,
        POLICY,
        backend,
        lambda environ: user_of({"x-remote-user": environ.get("HTTP_X_REMOTE_USER")}),
        max_body_bytes=MAX_BODY,
    )
    app.wsgi_app = audited  # type: ignore[method-assign]
    return app, audited


# --- running each one against serve ------------------------------------------------------------------------------


@dataclass
class Run:
    framework: str
    responses: dict[str, httpx.Response]
    events: dict[str, list[kubetrail.Event]]  # by auditID, in stage order

    def of(self, name: str) -> list[kubetrail.Event]:
        """The stored events of one request, by the Audit-ID it was answered with (or sent)."""
        audit_id = self.responses[name].headers.get("audit-id") or self.responses[name].request.headers["audit-id"]
        return self.events.get(audit_id, [])


def chunks(document: dict[str, Any], size: int = 512) -> Iterator[bytes]:
    data = json.dumps(document).encode()
    for start in range(0, len(data), size):
        yield data[start : start + size]


def exercise(base_url: str) -> dict[str, httpx.Response]:
    streamed = {"content-type": "application/json"}
    with httpx.Client(base_url=base_url, timeout=30) as http:
        return {
            "unread": http.put(BASE + "/configmaps/prices", json=PRICES, headers={"x-remote-user": "jane"}),
            "read": http.post(BASE + "/secrets", json=SECRET, headers={"x-remote-user": "ci-bot"}),
            "streamed": http.post(BASE + "/configmaps", content=chunks(STREAMED), headers=streamed),
            "large": http.post(BASE + "/configmaps", content=chunks(LARGE, 4000), headers=streamed),
            "list": http.get(BASE + "/pods", headers={"Audit-ID": "given-id-1", "x-remote-user": "jane"}),
            "anonymous": http.get(BASE + "/pods"),
            "health": http.get("/healthz"),
            # the framework answers an exception outside the middleware: the client's Audit-ID names the request
            "crash": http.get(BASE + "/configmaps/boom", headers={"Audit-ID": "crash-1", "Connection": "close"}),
        }


def stored(store: Path, cluster: str) -> dict[str, list[kubetrail.Event]]:
    with kubetrail.open_store(store) as source:
        table = source.select(f"cluster={cluster}", columns=["event"])
    events: dict[str, list[kubetrail.Event]] = {}
    for text in table.column("event").to_pylist():
        event = kubetrail.decode_event(text.encode())
        events.setdefault(event.auditID, []).append(event)
    return events


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    store = tmp_path_factory.mktemp("serve") / "store"
    values = {"store": str(store), "listen": "127.0.0.1:0", "rules": [], "ui": False}
    server = BackgroundServer(build_config({}, values))
    url = server.start()
    try:
        yield url, store
    finally:
        server.stop()


def run_asgi(framework: str, serve: tuple[str, Path]) -> Run:
    url, store = serve
    make = fastapi_app if framework == "fastapi" else starlette_app
    app_server = LiveServer(make(webhook(url, framework)), lifespan="on").start()
    try:
        responses = exercise(f"http://127.0.0.1:{app_server.port}")
    finally:
        app_server.stop()  # lifespan shutdown flushes the webhook's buffer into serve
    return Run(framework, responses, stored(store, framework))


def run_wsgi(serve: tuple[str, Path]) -> Run:
    url, store = serve
    app, audited = flask_app(webhook(url, "flask"))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        responses = exercise(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(10)
        audited.shutdown()
    return Run("flask", responses, stored(store, "flask"))


@pytest.fixture(scope="module", params=["fastapi", "starlette", "flask"])
def run(request: pytest.FixtureRequest, serve: tuple[str, Path]) -> Run:
    return run_wsgi(serve) if request.param == "flask" else run_asgi(request.param, serve)


def stages(events: list[kubetrail.Event]) -> list[str]:
    return [str(event.stage) for event in events]


def body(raw: Any) -> Any:
    return json.loads(bytes(raw)) if raw else None


def test_every_stored_event_follows_the_policy(run: Run) -> None:
    compiled = kubetrail.compile_policy(POLICY.policy)
    events = [event for found in run.events.values() for event in found]
    assert len(events) >= 12
    for event in events:
        decision = compiled.evaluate_event(event)
        assert event.level is decision.level, event
        assert event.stage not in decision.omit_stages
        assert event.sourceIPs == ["127.0.0.1"]
        assert event.userAgent.startswith("python-httpx/")


def test_a_body_the_app_never_reads_is_recorded(run: Run) -> None:
    response = run.responses["unread"]
    assert response.status_code == 200
    received, complete = run.of("unread")
    assert stages([received, complete]) == ["RequestReceived", "ResponseComplete"]
    assert complete.level is kubetrail.Level.REQUEST_RESPONSE and complete.verb == "update"
    assert complete.user == kubetrail.UserInfo(username="jane", groups=["system:authenticated"])
    assert complete.objectRef is not None
    assert (complete.objectRef.resource, complete.objectRef.namespace, complete.objectRef.name) == (
        "configmaps",
        "shop",
        "prices",
    )
    assert body(complete.requestObject) == PRICES
    assert body(complete.responseObject) == response.json()
    assert not received.requestObject and received.responseStatus is None
    assert complete.annotations == {"shop.example.com/handler": "replace"}  # added by the handler


def test_request_level_keeps_the_body_the_app_read_and_omits_stages(run: Run) -> None:
    response = run.responses["read"]
    assert response.status_code == 201 and response.json()["metadata"]["uid"] == "u-1"
    (complete,) = run.of("read")
    assert complete.stage is kubetrail.Stage.RESPONSE_COMPLETE
    assert complete.level is kubetrail.Level.REQUEST and complete.verb == "create"
    assert body(complete.requestObject) == SECRET and not complete.responseObject
    assert complete.objectRef is not None and complete.objectRef.name == "db"
    assert complete.responseStatus is not None and complete.responseStatus.code == 201
    assert complete.user.username == "ci-bot"


def test_a_streamed_body_reaches_the_app_whole_and_is_recorded(run: Run) -> None:
    response = run.responses["streamed"]
    assert response.status_code == 201
    assert response.json()["received"] == len(json.dumps(STREAMED))
    _, complete = run.of("streamed")
    assert body(complete.requestObject) == STREAMED
    assert body(complete.responseObject) == response.json()


def test_a_body_beyond_the_limit_streams_through_and_is_marked_truncated(run: Run) -> None:
    response = run.responses["large"]
    assert response.status_code == 201
    assert response.json()["received"] == len(json.dumps(LARGE))
    _, complete = run.of("large")
    assert not complete.requestObject
    assert complete.annotations["audit.k8s.io/truncated"] == "true"
    assert body(complete.responseObject) == response.json()


def test_metadata_level_and_a_given_audit_id(run: Run) -> None:
    response = run.responses["list"]
    assert response.headers["audit-id"] == "given-id-1"
    events = run.of("list")
    assert stages(events) == ["RequestReceived", "ResponseComplete"]
    assert {event.auditID for event in events} == {"given-id-1"}
    for event in events:
        assert event.level is kubetrail.Level.METADATA and event.verb == "list"
        assert not event.requestObject and not event.responseObject
    anonymous = run.of("anonymous")
    assert anonymous and all(event.user.username == "system:anonymous" for event in anonymous)


def test_level_none_records_nothing_but_echoes_an_audit_id(run: Run) -> None:
    response = run.responses["health"]
    assert response.status_code == 200 and response.headers["audit-id"]
    assert run.of("health") == []


def test_a_crashing_handler(run: Run) -> None:
    response = run.responses["crash"]
    assert response.status_code == 500
    events = run.of("crash")
    final = events[-1]
    assert final.responseStatus is not None and final.responseStatus.code == 500
    if run.framework == "flask":  # Flask answers the exception itself: a response, not a panic
        assert stages(events) == ["RequestReceived", "ResponseComplete"]
    else:
        assert stages(events) == ["RequestReceived", "Panic"]
        assert "handler crashed" in final.responseStatus.message
