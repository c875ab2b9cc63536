"""Small real backends for tests: one that records what it is given, one that fails."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from kubetrail.emit.builder import EventBuilder
from kubetrail.model.event import Event, Level, Stage, UserInfo
from kubetrail.policy.evaluate import AuditDecision


class Recording:
    """Keeps every batch it receives; `arrived` is set when `expect` events have come."""

    def __init__(self, label: str = "recording", expect: int = 0, accept: bool = True) -> None:
        self.label = label
        self.batches: list[list[Event]] = []
        self.started = 0
        self.stopped = 0
        self.accept = accept
        self.expect = expect
        self.arrived = threading.Event()
        self._lock = threading.Lock()

    @property
    def events(self) -> list[Event]:
        return [event for batch in self.batches for event in batch]

    def process_events(self, events: Sequence[Event]) -> bool:
        with self._lock:
            self.batches.append(list(events))
            if self.expect and len(self.events) >= self.expect:
                self.arrived.set()
        return self.accept

    def run(self) -> None:
        self.started += 1

    def shutdown(self) -> None:
        self.stopped += 1

    def name(self) -> str:
        return self.label


class Exploding(Recording):
    """Raises on every batch, as a broken delegate would."""

    def process_events(self, events: Sequence[Event]) -> bool:
        raise RuntimeError("delegate is broken")


def sample_events(count: int, start: datetime = datetime(2026, 3, 19, 10, 30, tzinfo=UTC)) -> list[Event]:
    """`count` ResponseComplete events of distinct requests (Metadata level), built by the event builder."""
    moments = iter(start + timedelta(milliseconds=n) for n in range(10 * count + 10))
    ids = iter(f"00000000-0000-4000-8000-{n:012d}" for n in range(1, count + 1))
    builder = EventBuilder(clock=lambda: next(moments), new_audit_id=lambda: next(ids))
    decision = AuditDecision(
        level=Level.METADATA, omit_stages=(Stage.REQUEST_RECEIVED,), omit_managed_fields=False, rule_index=0
    )
    user = UserInfo(
        username="system:serviceaccount:kube-system:replicaset-controller", groups=["system:serviceaccounts"]
    )
    events: list[Event] = []
    for n in range(count):
        events += builder.events(
            method="GET",
            url=f"/api/v1/namespaces/prod/pods/web-{n}",
            user=user,
            decision=decision,
            source_ips=["10.0.0.7"],
            user_agent="kube-controller-manager/v1.33.0",
        )
    return events
