"""Policy simulation against a tiny hand-written log whose numbers are worked out by hand."""

from __future__ import annotations

import json

import pytest

from kubetrail.emit.generator import SCENARIOS, GeneratorConfig, generate
from kubetrail.model import Event, Level, decode_event
from kubetrail.policy.evaluate import CompiledPolicy, compile_policy
from kubetrail.policy.load import load_policy_bytes
from kubetrail.policy.presets import load_preset
from kubetrail.policy.record import record
from kubetrail.policy.simulate import Simulator, simulate

POLICY = b"""
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    resources: [{group: coordination.k8s.io, resources: [leases]}]
  - level: Metadata
    resources: [{group: "", resources: [secrets]}]
  - level: RequestResponse
    resources: [{group: "", resources: [pods]}]
"""

USER = '"user":{"username":"jane","groups":["system:authenticated"]}'
T0 = "2026-03-19T10:00:00.000000Z"
T1 = "2026-03-19T10:00:00.010000Z"
T2 = "2026-03-19T10:01:00.000000Z"


def line(audit: str, stage: str, uri: str, verb: str, ref: str, timestamp: str, extra: str = "") -> str:
    ref_part = f',"objectRef":{ref}' if ref else ""
    return (
        f'{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"{audit}",'
        f'"stage":"{stage}","requestURI":"{uri}","verb":"{verb}",{USER}{ref_part}{extra},'
        f'"requestReceivedTimestamp":"{T0}","stageTimestamp":"{timestamp}"}}'
    )


LEASE = (
    '{"resource":"leases","namespace":"kube-node-lease","name":"n1","apiGroup":"coordination.k8s.io","apiVersion":"v1"}'
)
SECRET = '{"resource":"secrets","namespace":"prod","name":"db","apiVersion":"v1"}'
POD = '{"resource":"pods","namespace":"prod","name":"web","apiVersion":"v1"}'
PODS = '{"resource":"pods","namespace":"prod","apiVersion":"v1"}'
OK = ',"responseStatus":{"metadata":{},"code":200}'
SECRET_BODY = ',"responseObject":{"kind":"Secret","data":{"password":"aHVudGVyMg=="}}'
POD_IN = ',"requestObject":{"kind":"Pod","metadata":{"name":"web"}}'
POD_OUT = ',"responseObject":{"kind":"Pod","metadata":{"name":"web","uid":"u1"}}'

LOG = [
    # A: a lease renewal (rule 0, level None)
    line(
        "a", "RequestReceived", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1", "update", LEASE, T0
    ),
    line(
        "a",
        "ResponseComplete",
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
        "update",
        LEASE,
        T1,
        OK,
    ),
    # B: a secret read (rule 1, Metadata: the body must go)
    line("b", "RequestReceived", "/api/v1/namespaces/prod/secrets/db", "get", SECRET, T0),
    line("b", "ResponseComplete", "/api/v1/namespaces/prod/secrets/db", "get", SECRET, T1, OK + SECRET_BODY),
    # C: a pod create (rule 2, RequestResponse: both bodies stay)
    line("c", "RequestReceived", "/api/v1/namespaces/prod/pods", "create", PODS, T0),
    line("c", "ResponseComplete", "/api/v1/namespaces/prod/pods", "create", POD, T1, OK + POD_IN + POD_OUT),
    # D: a pod watch (rule 2; long-running: ResponseStarted and ResponseComplete are written)
    line("d", "RequestReceived", "/api/v1/namespaces/prod/pods?watch=true", "watch", PODS, T0),
    line("d", "ResponseStarted", "/api/v1/namespaces/prod/pods?watch=true", "watch", PODS, T1, OK),
    line("d", "ResponseComplete", "/api/v1/namespaces/prod/pods?watch=true", "watch", PODS, T2, OK),
    # E: a health check (no rule matches: level None)
    line("e", "RequestReceived", "/healthz", "get", "", T0),
    line("e", "ResponseComplete", "/healthz", "get", "", T1, OK),
]

# What the apiserver writes for B, C and D, spelled out by hand.
EXPECTED_B = line("b", "ResponseComplete", "/api/v1/namespaces/prod/secrets/db", "get", SECRET, T1, OK).replace(
    '"level":"RequestResponse"', '"level":"Metadata"'
)
EXPECTED_C = LOG[5]
EXPECTED_D = [LOG[7], LOG[8]]


@pytest.fixture
def events() -> list[Event]:
    return [decode_event(text.encode()) for text in LOG]


@pytest.fixture
def policy() -> CompiledPolicy:
    return compile_policy(load_policy_bytes(POLICY).policy)


def test_per_rule_numbers_match_the_hand_count(events: list[Event], policy: CompiledPolicy) -> None:
    report = simulate(policy, events)
    lease, secret, pod = report.rules
    assert (lease.rule, lease.level, lease.requests, lease.events, lease.bytes) == (0, Level.NONE, 1, 0, 0)
    assert (secret.level, secret.requests, secret.events) == (Level.METADATA, 1, 1)
    assert secret.bytes == len(EXPECTED_B) + 1
    assert (pod.level, pod.requests, pod.events) == (Level.REQUEST_RESPONSE, 2, 3)
    assert pod.bytes == len(EXPECTED_C) + 1 + sum(len(text) + 1 for text in EXPECTED_D)
    assert (report.unmatched.rule, report.unmatched.requests, report.unmatched.events) == (None, 1, 0)
    assert report.input_events == 11
    assert report.input_requests == 5
    assert report.events == 4
    assert report.bytes == secret.bytes + pod.bytes


def test_written_events_are_what_the_apiserver_writes(events: list[Event], policy: CompiledPolicy) -> None:
    from kubetrail.model import encode_event

    simulator = Simulator(policy)
    written = [simulator.add(event) for event in events]
    lines = [encode_event(event).decode() for event in written if event is not None]
    assert lines == [EXPECTED_B, EXPECTED_C, *EXPECTED_D]
    for text in lines:
        json.loads(text)


def test_span_and_daily_extrapolation(events: list[Event], policy: CompiledPolicy) -> None:
    report = simulate(policy, events)
    assert report.first_timestamp == T0 and report.last_timestamp == T2
    assert report.span_seconds == 60.0
    assert report.bytes_per_day() == report.bytes * 1440
    assert report.bytes_per_day(span_seconds=86_400) == report.bytes


def test_a_log_without_request_received_still_counts_each_request_once(
    events: list[Event], policy: CompiledPolicy
) -> None:
    recorded_only = [event for event in events if event.stage != "RequestReceived"]
    report = simulate(policy, recorded_only)
    assert [stats.requests for stats in report.rules] == [1, 1, 2]
    assert report.input_requests == 5


def test_recorded_event_drops_bodies_as_valid_json(events: list[Event], policy: CompiledPolicy) -> None:
    from kubetrail.model import encode_event

    secret_read = events[3]
    kept = record(secret_read, policy.evaluate_event(secret_read))
    assert kept is not None
    text = encode_event(kept).decode()
    assert "requestObject" not in text and "responseObject" not in text
    assert json.loads(text)["level"] == "Metadata"


# -- the sample policy shipped with kubetrail, on generated traffic ----------------------------------------------


def test_the_sample_policy_loads_cleanly_and_ends_with_a_metadata_catch_all() -> None:
    loaded = load_preset()
    assert loaded.warnings == []
    assert loaded.policy.omitStages == ["RequestReceived"]
    last = loaded.policy.rules[-1]
    assert last.level == "Metadata" and not (last.resources or last.verbs or last.users or last.nonResourceURLs)


def test_the_sample_policy_keeps_secrets_out_and_exec_in() -> None:
    config = GeneratorConfig(seed=2, nodes=3, rate=20.0, duration=120.0, scenarios=SCENARIOS, scenario_repeats=2)
    policy = compile_policy(load_preset().policy)
    simulator = Simulator(policy)
    written = [kept for kept in map(simulator.add, generate(config)) if kept is not None]
    assert written
    assert all(event.stage != "RequestReceived" for event in written)
    for event in written:
        ref = event.objectRef
        if ref is not None and ref.resource in ("secrets", "configmaps", "tokenreviews"):
            assert event.level == Level.METADATA and not event.requestObject and not event.responseObject
        if ref is not None and ref.resource == "leases":
            raise AssertionError("lease renewals are noise the sample policy drops")
        if ref is None:
            assert event.path not in ("/healthz", "/livez", "/readyz", "/metrics")
    execs = [e for e in written if e.objectRef and e.objectRef.subresource == "exec"]
    assert execs and all(e.level == Level.REQUEST for e in execs)
    assert all(e.requestObject for e in execs if e.responseStatus and e.responseStatus.code == 101)
    bindings = [
        e for e in written if e.verb == "create" and e.objectRef and e.objectRef.resource == "clusterrolebindings"
    ]
    assert bindings and all(e.level == Level.REQUEST_RESPONSE for e in bindings)
    report = simulator.report()
    assert report.unmatched.requests == 0  # the catch-all sees to that
    assert 700 <= report.bytes / report.events <= 1600
