"""The generated stream as a whole: determinism, wire format, stage rules and timestamp order."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import replace

import pytest

from kubetrail.emit.generator import GeneratorConfig, generate, scenario_times
from kubetrail.intake import read_bytes
from kubetrail.model import API_VERSION_V1, Event, Stage, encode_ndjson, parse_microtime
from tests.emit.generator.conftest import SMALL

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
MICROTIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
LONG_RUNNING_SUBRESOURCES = {"exec", "attach", "portforward", "log", "proxy"}


def _digest(config: GeneratorConfig) -> str:
    return hashlib.sha256(encode_ndjson(generate(config))).hexdigest()


def test_same_seed_gives_identical_bytes() -> None:
    config = replace(SMALL, duration=40.0)
    assert _digest(config) == _digest(config)


def test_different_seed_gives_a_different_stream() -> None:
    config = replace(SMALL, duration=40.0)
    assert _digest(config) != _digest(replace(config, seed=config.seed + 1))


def test_scenarios_do_not_change_the_background_traffic() -> None:
    quiet = replace(SMALL, duration=40.0, scenarios=())
    noisy = replace(SMALL, duration=40.0)
    background = {event.auditID for event in generate(quiet)}
    with_attacks = {event.auditID for event in generate(noisy)}
    assert background < with_attacks


def test_every_event_round_trips_through_the_model_in_v1_wire_format(stream: list[Event]) -> None:
    data = encode_ndjson(stream)
    decoded = [event for batch in read_bytes(data) for event in batch.events]
    assert decoded == stream
    for line in data.splitlines()[:500]:
        assert line.startswith(b'{"kind":"Event","apiVersion":"audit.k8s.io/v1",')
    for event in stream:
        assert event.apiVersion == API_VERSION_V1
        assert UUID.match(event.auditID)
        assert MICROTIME.match(event.requestReceivedTimestamp)
        assert MICROTIME.match(event.stageTimestamp)


def test_events_are_in_timestamp_order(stream: list[Event]) -> None:
    stamps = [event.stageTimestamp for event in stream]
    assert stamps == sorted(stamps)


def test_stages_of_each_request_follow_the_apiserver(stream: list[Event]) -> None:
    by_request: dict[str, list[Event]] = defaultdict(list)
    for event in stream:
        by_request[event.auditID].append(event)
    long_running = 0
    for events in by_request.values():
        stages = [event.stage for event in events]
        first = events[0]
        if first.responseStatus is not None and first.responseStatus.code == 401:
            # failed authentication: one event, at ResponseStarted, with an empty user
            assert stages == [Stage.RESPONSE_STARTED]
            assert first.user.username == ""
            continue
        ref = first.objectRef
        is_long = first.verb in ("watch", "proxy") or (ref is not None and ref.subresource in LONG_RUNNING_SUBRESOURCES)
        if is_long:
            long_running += 1
            assert stages == [Stage.REQUEST_RECEIVED, Stage.RESPONSE_STARTED, Stage.RESPONSE_COMPLETE]
        else:
            assert stages == [Stage.REQUEST_RECEIVED, Stage.RESPONSE_COMPLETE]
        received = parse_microtime(events[0].stageTimestamp)
        assert all(event.requestReceivedTimestamp == events[0].requestReceivedTimestamp for event in events)
        assert all(parse_microtime(event.stageTimestamp) >= received for event in events)
        # RequestReceived is written before authorization and before the body is read
        assert not first.annotations and not first.requestObject and first.responseStatus is None
        last = events[-1]
        assert last.annotations["authorization.k8s.io/decision"] in ("allow", "forbid")
        assert "authorization.k8s.io/reason" in last.annotations
        assert last.responseStatus is not None and last.responseStatus.code > 0
    assert long_running > 50


def test_non_resource_requests_never_carry_bodies(stream: list[Event]) -> None:
    paths = [event for event in stream if event.objectRef is None]
    assert {event.path for event in paths} >= {"/healthz", "/livez", "/readyz", "/metrics", "/version", "/api"}
    assert all(not event.requestObject and not event.responseObject for event in paths)


def test_status_codes_include_success_and_failures(stream: list[Event]) -> None:
    codes = {event.responseStatus.code for event in stream if event.responseStatus is not None}
    assert {200, 201, 101, 401, 403, 404, 409} <= codes
    for event in stream:
        status = event.responseStatus
        if status is not None and status.code >= 400 and status.code != 401:
            assert status.status == "Failure"
            assert status.reason in ("Forbidden", "NotFound", "Conflict", "AlreadyExists")


def test_full_events_average_one_to_two_kilobytes(stream: list[Event]) -> None:
    size = len(encode_ndjson(stream)) / len(stream)
    assert 1000 <= size <= 2000


def test_request_rate_follows_the_configuration() -> None:
    config = replace(SMALL, duration=120.0, rate=40.0, scenarios=())
    requests = {event.auditID for event in generate(config)}
    assert 0.9 * 40 * 120 <= len(requests) <= 1.1 * 40 * 120


def test_scenarios_are_injected_inside_the_span_a_few_times_each() -> None:
    planned = scenario_times(SMALL)
    assert len(planned) == len(SMALL.scenarios) * SMALL.scenario_repeats
    span_us = SMALL.duration * 1_000_000
    assert all(0 < at < span_us for at, _, _ in planned)
    assert [at for at, _, _ in planned] == sorted(at for at, _, _ in planned)


def test_invalid_configuration_is_refused_with_a_hint() -> None:
    from kubetrail.emit.generator import GeneratorError

    with pytest.raises(GeneratorError) as caught:
        GeneratorConfig(scenarios=("ddos",))
    assert "exec-into-pod" in caught.value.hint
    with pytest.raises(GeneratorError):
        GeneratorConfig(nodes=0)
    assert GeneratorConfig(scenarios=("all",)).scenarios == GeneratorConfig(scenarios=("all", "token-theft")).scenarios
