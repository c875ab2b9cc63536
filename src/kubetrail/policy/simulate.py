"""Replay audit events through a policy and count, per rule, what the apiserver would have written.

Input events are fully detailed (as the generator makes them, or a log recorded at a higher level);
each is cut down with `record()` to what the matching rule keeps, and measured as one JSON line.
A request is counted once per auditID, however many stages it has. Written events are also
tallied by (level, stage) and by (user, verb, resource) so the noisiest callers can be named.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec

from kubetrail.model.event import Event, Level, Stage
from kubetrail.model.microtime import parse_microtime
from kubetrail.policy.evaluate import CompiledPolicy
from kubetrail.policy.record import record

_SECONDS_PER_DAY = 86_400
_Key = TypeVar("_Key")


def resource_label(event: Event) -> str:
    """`pods`, `pods/exec`, `apps/deployments` for resource requests; the path for `/healthz`-like requests."""
    ref = event.objectRef
    if ref is None:
        return event.path
    name = f"{ref.apiGroup}/{ref.resource}" if ref.apiGroup else ref.resource
    return f"{name}/{ref.subresource}" if ref.subresource else name


@dataclass(frozen=True)
class Tally:
    """Events written and their bytes for one key (a level and stage, or a caller tuple)."""

    events: int
    bytes: int


@dataclass(frozen=True)
class NoisyTuple:
    """One (user, verb, resource) combination, the policy rule that records it, and what it writes."""

    user: str
    verb: str
    resource: str
    rule: int | None
    events: int
    bytes: int


@dataclass(frozen=True)
class RuleStats:
    """What one rule (or, with `rule` None, no rule at all) did to the stream."""

    rule: int | None
    level: Level
    requests: int
    events: int
    bytes: int


@dataclass(frozen=True)
class SimulationReport:
    """Per-rule results in rule order, the unmatched (level None) count, and totals.

    `under_recorded` counts written events whose input was recorded at a lower level than the policy
    asks for: their bodies are missing from the input, so their sizes are underestimates.
    """

    rules: tuple[RuleStats, ...]
    unmatched: RuleStats
    input_events: int
    input_requests: int
    events: int
    bytes: int
    first_timestamp: str
    last_timestamp: str
    by_level_stage: dict[tuple[Level, Stage], Tally] = field(default_factory=dict)
    tuples: tuple[NoisyTuple, ...] = ()
    under_recorded: int = 0

    def top_tuples(self, limit: int = 10) -> list[NoisyTuple]:
        """The callers that write the most bytes (ties: most events, then by name)."""
        ranked = sorted(self.tuples, key=lambda t: (-t.bytes, -t.events, t.user, t.verb, t.resource))
        return ranked[:limit]

    def per_day(self, value: float, span_seconds: float | None = None) -> float:
        """A count over the input's span extrapolated to one day."""
        span = self.span_seconds if span_seconds is None else span_seconds
        return value * _SECONDS_PER_DAY / span if span > 0 else float(value)

    @property
    def span_seconds(self) -> float:
        """Seconds between the first and the last event (0 for fewer than two distinct times)."""
        if not self.first_timestamp or not self.last_timestamp:
            return 0.0
        delta = parse_microtime(self.last_timestamp) - parse_microtime(self.first_timestamp)
        return max(delta.total_seconds(), 0.0)

    def bytes_per_day(self, span_seconds: float | None = None) -> float:
        """The written bytes extrapolated to one day of the same traffic."""
        return self.per_day(self.bytes, span_seconds)


class Simulator:
    """Accumulates a simulation one event at a time (so callers can show progress)."""

    def __init__(self, policy: CompiledPolicy) -> None:
        self.policy = policy
        size = len(policy)
        self._requests = [0] * (size + 1)  # last slot: unmatched
        self._events = [0] * (size + 1)
        self._bytes = [0] * (size + 1)
        self._open: set[str] = set()
        self._encoder = msgspec.json.Encoder()
        self._buffer = bytearray()
        self._by_level_stage: dict[tuple[Level, Stage], list[int]] = {}
        self._tuples: dict[tuple[str, str, str, int | None], list[int]] = {}
        self.input_events = 0
        self.under_recorded = 0
        self.first = ""
        self.last = ""

    def add(self, event: Event) -> Event | None:
        """Account for one event; returns the event as it would be written, or None."""
        self.input_events += 1
        stamp = event.stageTimestamp or event.requestReceivedTimestamp
        if stamp:
            if not self.first or stamp < self.first:
                self.first = stamp
            if stamp > self.last:
                self.last = stamp
        decision = self.policy.evaluate_event(event)
        slot = len(self._requests) - 1 if decision.rule_index is None else decision.rule_index
        audit_id = event.auditID
        open_requests = self._open
        if audit_id not in open_requests:
            self._requests[slot] += 1
            open_requests.add(audit_id)
        if event.stage == "ResponseComplete" or event.stage == "Panic":
            open_requests.discard(audit_id)
        written = record(event, decision)
        if written is not None:
            self._events[slot] += 1
            self._encoder.encode_into(written, self._buffer)
            size = len(self._buffer) + 1
            self._bytes[slot] += size
            _bump(self._by_level_stage, (written.level, written.stage), size)
            _bump(self._tuples, (event.user.username, event.verb, resource_label(event), decision.rule_index), size)
            if written.level.rank > event.level.rank:
                self.under_recorded += 1
        return written

    def add_all(self, events: Iterable[Event]) -> None:
        """Account for many events."""
        add = self.add
        for event in events:
            add(event)

    def report(self) -> SimulationReport:
        """The results so far."""
        rules = self.policy.policy.rules
        stats = tuple(
            RuleStats(index, Level(rule.level), self._requests[index], self._events[index], self._bytes[index])
            for index, rule in enumerate(rules)
        )
        unmatched = RuleStats(None, Level.NONE, self._requests[-1], self._events[-1], self._bytes[-1])
        return SimulationReport(
            rules=stats,
            unmatched=unmatched,
            input_events=self.input_events,
            input_requests=sum(self._requests),
            events=sum(self._events),
            bytes=sum(self._bytes),
            first_timestamp=self.first,
            last_timestamp=self.last,
            by_level_stage={key: Tally(count, size) for key, (count, size) in sorted(self._by_level_stage.items())},
            tuples=tuple(NoisyTuple(*key, count, size) for key, (count, size) in self._tuples.items()),
            under_recorded=self.under_recorded,
        )


def _bump(table: dict[_Key, list[int]], key: _Key, size: int) -> None:
    slot = table.get(key)
    if slot is None:
        table[key] = [1, size]
    else:
        slot[0] += 1
        slot[1] += size


def simulate(policy: CompiledPolicy, events: Iterable[Event]) -> SimulationReport:
    """Replay `events` through `policy` and report what each rule matched and wrote."""
    simulator = Simulator(policy)
    simulator.add_all(events)
    return simulator.report()
