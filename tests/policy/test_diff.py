"""Policy diff: events only one policy writes, and level changes, counted per caller."""

from __future__ import annotations

from kubetrail.model import Level, decode_event
from kubetrail.policy.diff import PolicyDiff
from kubetrail.policy.evaluate import compile_policy
from kubetrail.policy.load import load_policy_bytes
from kubetrail.policy.simulate import Simulator
from tests.policy.test_simulate import LOG, POLICY

# B records leases and health checks at Metadata, drops secrets and keeps pods at Metadata.
OTHER = b"""
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    resources: [{group: "", resources: [secrets]}]
  - level: Metadata
"""


def _diff() -> PolicyDiff:
    a = Simulator(compile_policy(load_policy_bytes(POLICY).policy))
    b = Simulator(compile_policy(load_policy_bytes(OTHER).policy))
    diff = PolicyDiff()
    for text in LOG:
        event = decode_event(text.encode())
        diff.add(event, a.add(event), b.add(event))
    return diff


def test_events_written_by_only_one_policy_are_grouped_by_caller() -> None:
    diff = _diff()
    assert dict(diff.only_a) == {("jane", "get", "secrets"): 1}
    assert dict(diff.only_b) == {
        ("jane", "update", "coordination.k8s.io/leases"): 1,
        ("jane", "get", "/healthz"): 1,
    }


def test_events_both_write_at_different_levels_are_level_changes() -> None:
    diff = _diff()
    # the pod create (1 event) and the watch (ResponseStarted + ResponseComplete): RequestResponse vs Metadata
    assert dict(diff.level_changes) == {(Level.REQUEST_RESPONSE, Level.METADATA): 3}
    assert not diff.identical and diff.same == 0


def test_a_policy_compared_with_itself_is_identical() -> None:
    a = Simulator(compile_policy(load_policy_bytes(POLICY).policy))
    b = Simulator(compile_policy(load_policy_bytes(POLICY).policy))
    diff = PolicyDiff()
    for text in LOG:
        event = decode_event(text.encode())
        diff.add(event, a.add(event), b.add(event))
    assert diff.identical and diff.same == 4
