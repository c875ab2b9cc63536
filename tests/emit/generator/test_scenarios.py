"""Each attack scenario leaves the footprint detection rules look for (and background traffic does not)."""

from __future__ import annotations

import json
from collections import Counter
from functools import cache

import pytest

from kubetrail.emit.generator import SCENARIOS, GeneratorConfig, generate
from kubetrail.model import Event, Stage, parse_microtime

BASE = GeneratorConfig(seed=5, nodes=3, rate=5.0, duration=120.0, scenario_repeats=4)


@cache
def _background() -> frozenset[str]:
    return frozenset(event.auditID for event in generate(BASE))


@cache
def scenario_events(name: str) -> list[Event]:
    """The events a scenario added to the otherwise identical background stream."""
    config = GeneratorConfig(**{**BASE.__dict__, "scenarios": (name,)})
    background = _background()
    return [event for event in generate(config) if event.auditID not in background]


def completed(events: list[Event]) -> list[Event]:
    return [event for event in events if event.stage == Stage.RESPONSE_COMPLETE]


def body(raw: object) -> dict[str, object]:
    return json.loads(bytes(raw))  # type: ignore[arg-type]


def test_background_alone_has_no_attack_footprint() -> None:
    for event in generate(BASE):
        ref = event.objectRef
        assert not (ref and ref.subresource == "exec")
        assert not (ref and ref.resource == "clusterrolebindings" and event.verb == "create")
        assert not (ref and ref.subresource == "token")
        assert event.user.username != "dev-intern@example.com"


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_adds_events(name: str) -> None:
    assert len(completed(scenario_events(name))) >= 4


def test_exec_into_pod() -> None:
    events = scenario_events("exec-into-pod")
    execs = [e for e in events if e.objectRef and e.objectRef.subresource == "exec"]
    assert {e.stage for e in execs} == {Stage.REQUEST_RECEIVED, Stage.RESPONSE_STARTED, Stage.RESPONSE_COMPLETE}
    done = completed(execs)
    assert {e.objectRef.namespace for e in done} >= {"kube-system", "shop"}
    for event in done:
        assert event.verb == "create" and event.responseStatus.code == 101
        assert "command=" in event.requestURI
        options = body(event.requestObject)
        assert options["kind"] == "PodExecOptions" and options["command"]
        assert f"container={options['container']}" in event.requestURI


def test_privileged_pod() -> None:
    creates = [e for e in completed(scenario_events("privileged-pod")) if e.objectRef.resource == "pods"]
    assert creates and all(e.verb == "create" for e in creates)
    for event in creates:
        spec = body(event.requestObject)["spec"]
        assert spec["hostNetwork"] is True and spec["hostPID"] is True  # type: ignore[index]
        assert {"name": "host", "hostPath": {"path": "/", "type": ""}} in spec["volumes"]  # type: ignore[index]
        assert spec["containers"][0]["securityContext"]["privileged"] is True  # type: ignore[index]
    outcomes = {(e.responseStatus.code, e.annotations["pod-security.kubernetes.io/enforce-policy"]) for e in creates}
    assert (201, "privileged:latest") in outcomes
    assert (403, "baseline:latest") in outcomes  # refused by Pod Security admission, though RBAC allowed it


def test_secret_harvesting() -> None:
    events = completed(scenario_events("secret-harvesting"))
    secrets = [e for e in events if e.objectRef.resource == "secrets"]
    by_user = Counter(e.user.username for e in secrets)
    harvester, _ = by_user.most_common(1)[0]
    mine = [e for e in secrets if e.user.username == harvester]
    assert any(e.verb == "list" and e.objectRef.namespace == "" for e in mine)  # across all namespaces
    assert len({e.objectRef.namespace for e in mine if e.verb == "list"}) >= 4
    gets = sorted(parse_microtime(e.stageTimestamp) for e in mine if e.verb == "get")
    assert len(gets) >= 10
    assert (gets[9] - gets[0]).total_seconds() < 60  # a burst


def test_rbac_escalation() -> None:
    events = completed(scenario_events("rbac-escalation"))
    bindings = [e for e in events if e.objectRef.resource == "clusterrolebindings" and e.verb == "create"]
    granted = [e for e in bindings if e.responseStatus.code == 201]
    assert granted and all(body(e.requestObject)["roleRef"]["name"] == "cluster-admin" for e in granted)  # type: ignore[index]
    assert any(e.responseStatus.code == 403 for e in bindings)
    roles = [e for e in events if e.objectRef.resource == "roles" and e.verb == "create"]
    assert roles
    for event in roles:
        assert body(event.requestObject)["rules"] == [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]


def test_anonymous_access() -> None:
    events = scenario_events("anonymous-access")
    anonymous = [e for e in completed(events) if e.user.username == "system:anonymous"]
    assert {e.responseStatus.code for e in anonymous} >= {200, 403}
    denied = [e for e in anonymous if e.responseStatus.code == 403]
    assert any(e.objectRef and e.objectRef.resource == "secrets" for e in denied)
    assert all(e.annotations["authorization.k8s.io/decision"] == "forbid" for e in denied)
    failed = [e for e in events if e.responseStatus and e.responseStatus.code == 401]
    assert failed
    for event in failed:
        assert event.stage == Stage.RESPONSE_STARTED and event.user.username == ""
        assert event.responseStatus.message.startswith("Authentication failed")


def test_token_theft() -> None:
    events = completed(scenario_events("token-theft"))
    mints = [e for e in events if e.objectRef.subresource == "token"]
    assert mints
    for mint in mints:
        assert mint.verb == "create" and mint.objectRef.resource == "serviceaccounts"
        account = f"system:serviceaccount:{mint.objectRef.namespace}:{mint.objectRef.name}"
        uses = [e for e in events if e.user.username == account and e.stageTimestamp > mint.stageTimestamp]
        assert uses
        assert all(ip not in mint.sourceIPs and not ip.startswith("10.") for e in uses for ip in e.sourceIPs)
        assert not any(e.userAgent.startswith("kubectl/") for e in uses)


def test_permission_enumeration() -> None:
    events = completed(scenario_events("permission-enumeration"))
    denied = [e for e in events if e.responseStatus.code == 403]
    user, count = Counter(e.user.username for e in denied).most_common(1)[0]
    assert count >= 20
    times = sorted(parse_microtime(e.stageTimestamp) for e in denied if e.user.username == user)
    assert (times[19] - times[0]).total_seconds() < 10
    assert any(e.objectRef.resource == "selfsubjectrulesreviews" for e in events)
