"""Match events against a compiled rule set: Falco's `first` (one alert per event) or `all` matching.

Rules are bucketed by the (stage, verb, resource, subresource) values they require, so an event is only tried
against rules that can match it; the bucket keeps rule-file order, so `first` stays Falco's first. A bucket's
rules run as one generated function (`codegen.fuse`) that reads the bucket's index values from its key.
Other detectors (Sigma, stateful rules) plug in beside the rule set through the Detector protocol.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kubetrail.detect.alert import Alert
from kubetrail.detect.codegen import fuse, fuse_groups, index_key
from kubetrail.detect.compiler import CompiledRule, RuleSet
from kubetrail.detect.context import EventContext
from kubetrail.detect.facts import outcome_label as outcome_of
from kubetrail.detect.output import TimeFormat
from kubetrail.detect.priority import Priority
from kubetrail.detect.stateful import StatefulDetector
from kubetrail.detect.timestamps import event_time_ns
from kubetrail.model import Event

_MAX_BUCKETS = 8192
_Key = tuple[object, object, object, object]
_Bucket = Callable[[EventContext], list[CompiledRule]]
_Combined = Callable[[EventContext], tuple[list[Any] | None, ...]]


class Matching(enum.StrEnum):
    """How many rules may fire per event."""

    FIRST = "first"
    ALL = "all"


class Detector(Protocol):
    """Anything that turns an event into alerts (a rule set, Sigma rules, a stateful detector)."""

    def detect(self, ctx: EventContext) -> list[Alert]: ...


class Engine:
    """Evaluates events against a rule set (plus optional extra detectors) and builds alerts."""

    def __init__(
        self,
        ruleset: RuleSet,
        *,
        matching: Matching = Matching.ALL,
        hostname: str = "",
        min_priority: Priority = Priority.DEBUG,
        detectors: Sequence[Detector] = (),
        time_format: TimeFormat = TimeFormat.ISO8601,
    ) -> None:
        self.matching = Matching(matching)
        self._first = self.matching is Matching.FIRST
        self.hostname = hostname
        self.rules = [rule for rule in ruleset.enabled if rule.priority.at_least(min_priority) and not rule.never]
        self.time_format = TimeFormat(time_format)
        own = ruleset.detectors(min_priority, hostname=hostname, time_format=self.time_format, running=detectors)
        self.detectors = (*own, *detectors)
        # Leading stateful detectors are tested in the same generated function as the rules; the rest are called.
        stateful: list[StatefulDetector] = []
        for detector in self.detectors:
            if not isinstance(detector, StatefulDetector):
                break
            stateful.append(detector)
        self._stateful = tuple(stateful)
        self._called = self.detectors[len(stateful) :]
        self._buckets: dict[_Key, _Bucket] = {}
        self._combined: dict[_Key, _Combined] = {}

    def _candidates(self, key: _Key) -> tuple[CompiledRule, ...]:
        """The rules an event with these index values can match, in rule-file order."""
        return tuple(rule for rule in self.rules if rule.admits(key))

    def _bucket(self, key: _Key) -> _Bucket:
        if len(self._buckets) >= _MAX_BUCKETS:
            self._buckets.clear()
        candidates = self._candidates(key)
        found = self._buckets[key] = fuse([(rule.residual, rule) for rule in candidates], first=self._first, key=key)
        return found

    def _combined_bucket(self, key: _Key) -> _Combined:
        if len(self._combined) >= _MAX_BUCKETS:
            self._combined.clear()
        groups: list[list[tuple[Any, Any]]] = [[(rule.residual, rule) for rule in self._candidates(key)]]
        for detector in self._stateful:
            groups.append([(runner.match, runner) for runner in detector.admitted(key)])
        found = self._combined[key] = fuse_groups(groups, first_exclusive=self._first, key=key)
        return found

    def matches(self, ctx: EventContext) -> list[CompiledRule]:
        """The rules the event matches, in rule-file order (at most one under `first`)."""
        key = index_key(ctx.event)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._bucket(key)
        return bucket(ctx)

    def alert(self, rule: CompiledRule, ctx: EventContext, time_ns: int) -> Alert:
        """The alert `rule` raises for the event."""
        message, fields = rule.output.render(ctx)
        return Alert(
            rule=rule.name,
            priority=rule.priority,
            source=rule.source,
            time_ns=time_ns,
            message=message,
            output_fields=fields,
            tags=rule.tags,
            audit_id=ctx.event.auditID,
            cluster=ctx.cluster or None,
            hostname=self.hostname,
            time_format=self.time_format,
            mitre=rule.mitre,
            threat_matrix=rule.threat_matrix,
            outcome=outcome_of(ctx.event),
        )

    def detect(self, ctx: EventContext) -> list[Alert]:
        """Every alert for one event: matching rules first, then the extra detectors'."""
        event = ctx.event
        key = index_key(event)
        bucket = self._combined.get(key)
        if bucket is None:
            bucket = self._combined_bucket(key)
        found = bucket(ctx)
        rules = found[0]
        alerts: list[Alert] = []
        if rules:
            time_ns = event_time_ns(event)
            alerts = [self.alert(rule, ctx, time_ns) for rule in rules]
        if self._stateful:
            runners = found[1]
            if runners:
                alerts.extend(self._stateful[0].process(ctx, runners))
            if len(found) > 2:
                for detector, selected in zip(self._stateful[1:], found[2:], strict=True):
                    if selected:
                        alerts.extend(detector.process(ctx, selected))
        if self._called:
            for other in self._called:
                alerts.extend(other.detect(ctx))
        return alerts

    def evaluate(self, event: Event, *, cluster: str = "", raw: bytes | None = None) -> list[Alert]:
        """Alerts for one event; `raw` (its original JSON) lets `jevt.*` see fields the model drops."""
        return self.detect(EventContext(event, cluster, raw))
