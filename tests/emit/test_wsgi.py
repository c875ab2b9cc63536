"""The WSGI audit middleware called as a WSGI server calls it (PEP 3333), without a network."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from kubetrail.emit.wsgi import WSGIAuditMiddleware, request_url
from kubetrail.model.event import Level, Stage, UserInfo
from kubetrail.model.policy import GroupResources, Policy, PolicyRule

from .backends import Recording

POLICY = Policy(
    rules=[
        PolicyRule(level="None", nonResourceURLs=["/healthz"]),
        PolicyRule(level="RequestResponse", resources=[GroupResources(resources=["configmaps"])]),
        PolicyRule(level="Metadata"),
    ]
)
CONFIGMAP = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "prices"}, "data": {"a": "1"}}


def environ(method: str, path: str, body: bytes = b"", **extra: Any) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "CONTENT_LENGTH": str(len(body)) if body else "",
        "REMOTE_ADDR": "10.0.0.5",
        "HTTP_USER_AGENT": "curl/8.0",
        "wsgi.input": io.BytesIO(body),
        **extra,
    }


class Server:
    """Calls the app as a WSGI server does: start_response, iterate, close."""

    def __init__(self) -> None:
        self.status = ""
        self.headers: dict[str, str] = {}
        self.written: list[bytes] = []

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.status = status
        self.headers = dict(headers)
        return self.written.append

    def call(self, app: Any, env: dict[str, Any]) -> bytes:
        result = app(env, self.start_response)
        try:
            for chunk in result:
                self.written.append(chunk)
            return b"".join(self.written)
        finally:
            if hasattr(result, "close"):
                result.close()


def echo_size(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Reads the body by lines and small reads, as frameworks do, and answers with what it got."""
    stream = environ["wsgi.input"]
    first = stream.readline()
    rest = stream.read(5) + stream.read()
    start_response("201 Created", [("Content-Type", "application/json")])
    return [json.dumps({"received": len(first + rest)}).encode()]


def ignores_body(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    write = start_response("200 OK", [("Content-Type", "application/json; charset=utf-8")])
    write(b'{"kind": "ConfigMap", ')
    yield b'"metadata": {"name": "prices"}}'


def audited(app: Any, backend: Recording, **options: Any) -> WSGIAuditMiddleware:
    return WSGIAuditMiddleware(
        app, POLICY, backend, lambda env: UserInfo(username=env.get("REMOTE_USER", "jane")), **options
    )


def test_a_body_the_app_never_reads_is_recorded_with_the_response() -> None:
    recording = Recording()
    server = Server()
    body = json.dumps(CONFIGMAP).encode()
    answer = server.call(
        audited(ignores_body, recording), environ("PUT", "/api/v1/namespaces/shop/configmaps/prices", body)
    )
    assert server.status == "200 OK" and json.loads(answer)["metadata"]["name"] == "prices"
    received, complete = recording.events
    assert (received.stage, complete.stage) == (Stage.REQUEST_RECEIVED, Stage.RESPONSE_COMPLETE)
    assert server.headers["Audit-Id"] == complete.auditID
    assert complete.level is Level.REQUEST_RESPONSE and complete.verb == "update"
    assert json.loads(bytes(complete.requestObject)) == CONFIGMAP
    assert json.loads(bytes(complete.responseObject)) == {"kind": "ConfigMap", "metadata": {"name": "prices"}}
    assert complete.user.username == "jane" and complete.sourceIPs == ["10.0.0.5"] and complete.userAgent == "curl/8.0"


def test_the_app_reads_the_replayed_body_whole_and_the_limit_marks_truncation() -> None:
    for limit, truncated in ((1 << 20, False), (100, True)):
        recording = Recording()
        server = Server()
        big = dict(CONFIGMAP, data={"k": "v" * 1000})
        body = json.dumps(big, indent=1).encode()
        app = audited(echo_size, recording, max_body_bytes=limit)
        answer = server.call(app, environ("POST", "/api/v1/namespaces/shop/configmaps", body))
        assert json.loads(answer) == {"received": len(body)}
        complete = recording.events[-1]
        assert (complete.annotations.get("audit.k8s.io/truncated") == "true") is truncated
        assert (json.loads(bytes(complete.requestObject)) if complete.requestObject else None) == (
            None if truncated else big
        )


def test_chunked_input_is_read_to_its_end() -> None:
    recording = Recording()
    body = json.dumps(CONFIGMAP).encode()
    env = environ(
        "POST", "/api/v1/namespaces/shop/configmaps", body, CONTENT_LENGTH="", **{"wsgi.input_terminated": True}
    )
    Server().call(audited(echo_size, recording), env)
    assert json.loads(bytes(recording.events[-1].requestObject)) == CONFIGMAP


def test_level_none_passes_through_with_an_audit_id_and_a_refusing_backend_fails_the_request() -> None:
    recording = Recording()
    server = Server()
    server.call(audited(ignores_body, recording), environ("GET", "/healthz", HTTP_AUDIT_ID="given"))
    assert server.headers["Audit-Id"] == "given" and recording.events == []
    refusing = Recording(accept=False)
    server = Server()
    answer = server.call(audited(ignores_body, refusing), environ("GET", "/api/v1/namespaces/shop/pods"))
    assert server.status.startswith("500")
    assert answer == b'Internal Server Error: "/api/v1/namespaces/shop/pods": failed to store audit event\n'


def test_backends_run_at_construction_and_stop_once() -> None:
    recording = Recording()
    app = audited(ignores_body, recording)
    assert recording.started == 1
    app.shutdown()
    app.shutdown()
    assert recording.stopped == 1


def test_request_url_prefers_the_raw_uri() -> None:
    assert request_url({"RAW_URI": "/a%20b?x=1", "PATH_INFO": "/a b"}) == "/a%20b?x=1"
    assert request_url({"PATH_INFO": "/a b", "QUERY_STRING": "watch=1"}) == "/a%20b?watch=1"
