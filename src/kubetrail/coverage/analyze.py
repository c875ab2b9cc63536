"""Detection coverage of an audit policy: which rules stop firing, or print `<NA>`, on what the policy records.

Each full event is run through the detection rules twice: as it is, and as the candidate policy
would have written it (bodies stripped by level, omitted stages and level None dropped). A rule
that fires on the first but not the second has lost that event; a rule that fires on both but
prints a field that becomes missing has lost that field. Every loss is charged to the policy rule
that decided the event (None when no rule matched), with the reason. A rule that fires only on the
recorded event (a condition on a field the policy strips, such as `not ... exists`) gains an alert.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from kubetrail.detect import CompiledRule, Engine, EventContext, Matching, RuleSet
from kubetrail.model.event import Event, Level
from kubetrail.policy.evaluate import AuditDecision, CompiledPolicy
from kubetrail.policy.record import record


@dataclass(frozen=True, order=True)
class Cause:
    """The policy rule (index; None when none matched) that decided a lost event, and what it did."""

    rule: int | None
    reason: str


@dataclass
class RuleCoverage:
    """What one detection rule sees on the full log and on the recorded one."""

    name: str
    priority: str
    fired_full: int = 0
    fired_recorded: int = 0
    lost: Counter[Cause] = field(default_factory=Counter)
    lost_fields: dict[str, Counter[Cause]] = field(default_factory=dict)
    gained: Counter[Cause] = field(default_factory=Counter)

    @property
    def lost_events(self) -> int:
        """Events the rule fired on in the full log but not under the policy."""
        return sum(self.lost.values())

    @property
    def degraded(self) -> bool:
        """True when the policy costs this rule any alert or any output field."""
        return bool(self.lost) or bool(self.lost_fields)

    @property
    def changed(self) -> bool:
        """True when the policy makes this rule lose anything or raise alerts it would not raise on full events."""
        return self.degraded or bool(self.gained)

    @property
    def blind(self) -> bool:
        """True when the rule fires on the full log and never under the policy."""
        return self.fired_full > 0 and self.fired_recorded == 0


@dataclass(frozen=True)
class CoverageReport:
    """Per detection rule that fired on the full log or under the policy, in rule-file order."""

    rules: tuple[RuleCoverage, ...]

    @property
    def degraded(self) -> list[RuleCoverage]:
        """The rules that lose alerts or fields under the policy."""
        return [rule for rule in self.rules if rule.degraded]

    @property
    def changed(self) -> list[RuleCoverage]:
        """The rules that lose alerts or fields, or gain alerts, under the policy."""
        return [rule for rule in self.rules if rule.changed]

    def by_name(self, name: str) -> RuleCoverage:
        """The coverage of the rule called `name` (KeyError when it never fired)."""
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(name)


def loss_reason(event: Event, decision: AuditDecision, written: Event | None) -> str:
    """Why the policy's decision hides what a rule needed from `event`, in a few words."""
    if decision.level is Level.NONE:
        return "level None" if decision.rule_index is not None else "no rule matches (level None)"
    if written is None:
        return f"stage {event.stage.value} omitted"
    dropped = []
    if event.requestObject and not written.requestObject:
        dropped.append("requestObject")
    if event.responseObject and not written.responseObject:
        dropped.append("responseObject")
    if dropped:
        return f"level {decision.level.value} drops {' and '.join(dropped)}"
    if written.requestObject != event.requestObject or written.responseObject != event.responseObject:
        return "omitManagedFields drops metadata.managedFields"
    return f"level {decision.level.value}"


class CoverageAnalyzer:
    """Accumulates coverage one event at a time (so callers can share one pass with a simulation)."""

    def __init__(self, policy: CompiledPolicy, ruleset: RuleSet, *, cluster: str = "") -> None:
        self.policy = policy
        self.engine = Engine(ruleset, matching=Matching.ALL)
        self.cluster = cluster
        self._rules: dict[str, RuleCoverage] = {}
        self._order = {rule.name: rule.position for rule in self.engine.rules}

    def _coverage(self, rule: CompiledRule) -> RuleCoverage:
        found = self._rules.get(rule.name)
        if found is None:
            found = self._rules[rule.name] = RuleCoverage(rule.name, rule.priority.label)
        return found

    def add(self, event: Event, decision: AuditDecision | None = None, written: Event | None = None) -> None:
        """Account for one full event; pass the decision and the written event when already known."""
        engine = self.engine
        full_ctx = EventContext(event, self.cluster)
        fired = engine.matches(full_ctx)
        if decision is None:
            decision = self.policy.evaluate_event(event)
            written = record(event, decision)
        if written is None and not fired:
            return
        recorded_ctx: EventContext | None = None
        kept: dict[str, CompiledRule] = {}
        if written is event:
            recorded_ctx, kept = full_ctx, {rule.name: rule for rule in fired}
        elif written is not None:
            recorded_ctx = EventContext(written, self.cluster)
            kept = {rule.name: rule for rule in engine.matches(recorded_ctx)}
        cause = Cause(decision.rule_index, loss_reason(event, decision, written))
        fired_names = set()
        for rule in fired:
            fired_names.add(rule.name)
            coverage = self._coverage(rule)
            coverage.fired_full += 1
            if rule.name not in kept or recorded_ctx is None:
                coverage.lost[cause] += 1
                continue
            coverage.fired_recorded += 1
            if recorded_ctx is full_ctx:
                continue
            _, full_fields = rule.output.render(full_ctx)
            _, kept_fields = rule.output.render(recorded_ctx)
            for key, value in full_fields.items():
                if value is not None and kept_fields.get(key) is None:
                    coverage.lost_fields.setdefault(key, Counter())[cause] += 1
        for name, rule in kept.items():
            if name not in fired_names:
                coverage = self._coverage(rule)
                coverage.fired_recorded += 1
                coverage.gained[cause] += 1

    def add_all(self, events: Iterable[Event]) -> None:
        """Account for many events."""
        for event in events:
            self.add(event)

    def report(self) -> CoverageReport:
        """The results so far, in rule-file order."""
        ordered = sorted(self._rules.values(), key=lambda rule: self._order.get(rule.name, 0))
        return CoverageReport(tuple(ordered))


def analyze(policy: CompiledPolicy, ruleset: RuleSet, events: Iterable[Event]) -> CoverageReport:
    """Run `events` through the rules in full and as `policy` records them, and report the losses."""
    analyzer = CoverageAnalyzer(policy, ruleset)
    analyzer.add_all(events)
    return analyzer.report()
