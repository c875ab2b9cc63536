"""kubetrail's request facts (`ka.outcome`, `ka.action`, `ka.exec.*`, `ka.source.scope`, `ka.useragent.product`).

Expected values follow the apiserver's documented behaviour: HTTP status codes of API responses (401 for a
missing or bad credential, 403 for authorization or admission refusals, 409 conflicts, 422 invalid objects),
201 Created for an object created by PUT or server-side apply, and `kubectl exec` sending its argv as repeated
`command` query parameters that the apiserver decodes into a PodExecOptions.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubetrail.detect import Engine
from kubetrail.detect.context import EventContext
from kubetrail.detect.facts import Outcome, action, agent_product, exec_argv, outcome, source_scope
from kubetrail.model import decode_event
from tests.detect.helpers import REMOVE, event_dict, make_event, matches, rule, ruleset


def _status(code: int, stage: str = "ResponseComplete") -> dict[str, Any]:
    return {"responseStatus": {"metadata": {}, "code": code}, "stage": stage}


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (200, Outcome.SUCCEEDED),
        (201, Outcome.SUCCEEDED),
        (101, Outcome.SUCCEEDED),
        (401, Outcome.DENIED),
        (403, Outcome.DENIED),
        (404, Outcome.FAILED),
        (409, Outcome.FAILED),
        (422, Outcome.FAILED),
        (429, Outcome.FAILED),
        (500, Outcome.FAILED),
        (503, Outcome.FAILED),
    ],
)
def test_outcome_by_status_code(code: int, expected: Outcome) -> None:
    assert outcome(make_event(**_status(code))) is expected


def test_outcome_is_unknown_before_the_response_and_failed_on_panic() -> None:
    assert outcome(make_event(stage="RequestReceived", responseStatus=REMOVE)) is None
    assert outcome(make_event(stage="Panic", responseStatus=REMOVE)) is Outcome.FAILED


def test_outcome_is_a_rule_field_and_an_alert_key() -> None:
    denied = make_event(**_status(403))
    assert matches("ka.outcome = denied", denied)
    assert not matches("ka.outcome = succeeded", denied)
    assert not matches("ka.outcome exists", make_event(stage="RequestReceived", responseStatus=REMOVE))
    engine = Engine(ruleset(rule("ka.verb = create")))
    alert = engine.evaluate(denied)[0]
    assert alert.outcome == "denied"
    assert json.loads(alert.to_falco_json())["outcome"] == "denied"


@pytest.mark.parametrize(
    ("verb", "code", "expected"),
    [
        ("create", 201, "created"),
        ("update", 200, "changed"),
        ("update", 201, "created"),
        ("patch", 200, "changed"),
        ("patch", 201, "created"),
        ("delete", 200, "deleted"),
        ("deletecollection", 200, "deleted"),
        ("get", 200, "read"),
        ("list", 200, "read"),
        ("watch", 200, "read"),
    ],
)
def test_action_tells_creations_from_changes(verb: str, code: int, expected: str) -> None:
    assert action(make_event(verb=verb, **_status(code))) == expected


EXEC_REF = {"resource": "pods", "namespace": "default", "name": "web", "subresource": "exec", "apiVersion": "v1"}


def _exec(uri: str, body: dict[str, Any] | None = None) -> EventContext:
    data = event_dict(requestURI=uri, objectRef=EXEC_REF, verb="create", **_status(101, "ResponseStarted"))
    if body is not None:
        data["requestObject"] = body
    raw = json.dumps(data).encode()
    return EventContext(decode_event(raw), "", raw)


def test_exec_command_from_the_uri_keeps_every_argument_in_order() -> None:
    uri = (
        "/api/v1/namespaces/default/pods/web/exec?command=sh&command=-c&command=cat+%2Fvar%2Frun%2Fsecrets%2F"
        "kubernetes.io%2Fserviceaccount%2Ftoken&container=app&stdin=true&stdout=true&tty=false"
    )
    ctx = _exec(uri)
    assert exec_argv(ctx.event, None) == ["sh", "-c", "cat /var/run/secrets/kubernetes.io/serviceaccount/token"]
    assert matches('ka.exec.command = "sh -c cat /var/run/secrets/kubernetes.io/serviceaccount/token"', ctx)
    assert matches("ka.exec.program = sh", ctx)


def test_exec_command_from_the_pod_exec_options_body_when_the_uri_has_none() -> None:
    body = {
        "kind": "PodExecOptions",
        "apiVersion": "v1",
        "stdout": True,
        "container": "app",
        "command": ["tar", "cf", "-", "/data"],
    }
    ctx = _exec("/api/v1/namespaces/default/pods/web/exec", body)
    assert matches('ka.exec.command = "tar cf - /data"', ctx)
    assert matches("ka.exec.program = tar", ctx)


def test_exec_fields_are_missing_outside_exec() -> None:
    assert not matches("ka.exec.command exists", make_event(requestURI="/api/v1/pods?command=sh"))
    assert not matches("ka.exec.program exists", _exec("/api/v1/namespaces/default/pods/web/exec"))


@pytest.mark.parametrize(
    ("address", "scope"),
    [
        ("203.0.113.9", "public"),
        ("8.8.8.8", "public"),
        ("2001:4860::8888", "public"),
        ("10.2.3.4", "private"),
        ("172.31.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),
        ("fd12::1", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("gce-internal-ip", "invalid"),
        ("private", "invalid"),
        ("", "invalid"),
    ],
)
def test_source_scope(address: str, scope: str) -> None:
    assert source_scope(address) == scope


def test_user_agent_product() -> None:
    assert agent_product("kubectl/v1.30.1 (linux/amd64) kubernetes/7c48c2b") == "kubectl"
    assert agent_product("Mozilla/5.0 (X11; Linux x86_64)") == "Mozilla"
    assert agent_product("curl/8.5.0") == "curl"
    assert agent_product("") is None
