"""Per level and stage, per caller: the simulation's tallies against the hand-written log's hand count."""

from __future__ import annotations

import pytest

from kubetrail.model import Event, Level, Stage, decode_event
from kubetrail.policy.evaluate import CompiledPolicy, compile_policy
from kubetrail.policy.load import load_policy_bytes
from kubetrail.policy.simulate import NoisyTuple, Tally, resource_label, simulate
from tests.policy.test_simulate import EXPECTED_B, EXPECTED_C, EXPECTED_D, LOG, POLICY


@pytest.fixture
def events() -> list[Event]:
    return [decode_event(text.encode()) for text in LOG]


@pytest.fixture
def policy() -> CompiledPolicy:
    return compile_policy(load_policy_bytes(POLICY).policy)


def test_bytes_by_level_and_stage_are_the_written_lines(events: list[Event], policy: CompiledPolicy) -> None:
    report = simulate(policy, events)
    started, completed = EXPECTED_D
    assert report.by_level_stage == {
        (Level.METADATA, Stage.RESPONSE_COMPLETE): Tally(1, len(EXPECTED_B) + 1),
        (Level.REQUEST_RESPONSE, Stage.RESPONSE_STARTED): Tally(1, len(started) + 1),
        (Level.REQUEST_RESPONSE, Stage.RESPONSE_COMPLETE): Tally(2, len(EXPECTED_C) + len(completed) + 2),
    }
    assert sum(t.bytes for t in report.by_level_stage.values()) == report.bytes


def test_per_day_scales_by_the_span_of_the_input(events: list[Event], policy: CompiledPolicy) -> None:
    report = simulate(policy, events)  # the log spans 60 s: a day is 1440 times as much
    metadata = report.by_level_stage[(Level.METADATA, Stage.RESPONSE_COMPLETE)]
    assert report.per_day(metadata.events) == 1440
    assert report.per_day(metadata.bytes) == (len(EXPECTED_B) + 1) * 1440


def test_noisy_tuples_rank_callers_by_bytes_written(events: list[Event], policy: CompiledPolicy) -> None:
    report = simulate(policy, events)
    started, completed = EXPECTED_D
    expected = {
        NoisyTuple("jane", "create", "pods", 2, 1, len(EXPECTED_C) + 1),
        NoisyTuple("jane", "watch", "pods", 2, 2, len(started) + len(completed) + 2),
        NoisyTuple("jane", "get", "secrets", 1, 1, len(EXPECTED_B) + 1),
    }
    assert set(report.tuples) == expected  # leases (None) and /healthz (unmatched) write nothing
    ranked = report.top_tuples(2)
    assert [t.bytes for t in ranked] == sorted((t.bytes for t in expected), reverse=True)[:2]


def test_resource_labels_name_group_and_subresource() -> None:
    exec_line = LOG[3].replace('"resource":"secrets"', '"resource":"pods","subresource":"exec"')
    assert resource_label(decode_event(exec_line.encode())) == "pods/exec"
    assert resource_label(decode_event(LOG[1].encode())) == "coordination.k8s.io/leases"
    assert resource_label(decode_event(LOG[9].encode())) == "/healthz"


def test_events_recorded_below_the_policys_level_are_counted(events: list[Event], policy: CompiledPolicy) -> None:
    assert simulate(policy, events).under_recorded == 0  # the log is at RequestResponse throughout
    lowered = [decode_event(text.replace('"level":"RequestResponse"', '"level":"Metadata"').encode()) for text in LOG]
    # the pod create and the watch's two events are written at RequestResponse from Metadata input
    assert simulate(policy, lowered).under_recorded == 3
