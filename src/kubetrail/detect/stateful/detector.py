"""The stateful detector: runs every stateful rule on each event in event time, with bounded, checkpointable state."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kubetrail.detect.alert import Alert
from kubetrail.detect.codegen import IndexKey, fuse, index_key
from kubetrail.detect.context import EventContext
from kubetrail.detect.output import TimeFormat
from kubetrail.detect.stateful.first_seen import FirstSeenRunner
from kubetrail.detect.stateful.runner import Runner
from kubetrail.detect.stateful.sequence import SequenceRunner
from kubetrail.detect.stateful.spec import (
    DEFAULT_MAX_KEYS,
    NS_PER_SECOND,
    FirstSeenSpec,
    SequenceSpec,
    SpecError,
    StatefulSpec,
    ThresholdSpec,
    ValueCountSpec,
)
from kubetrail.detect.stateful.window import ThresholdRunner, ValueCountRunner
from kubetrail.detect.timestamps import event_time_ns

DEFAULT_LATENESS_S = 5.0
_EXPIRE_EVERY = 256
_MAX_BUCKETS = 8192
_Bucket = Callable[[EventContext], list["Runner[Any]"]]


@dataclass(frozen=True, slots=True)
class RuleStats:
    """How one stateful rule's memory is doing: keys held, keys evicted by the limit, keys expired, alerts."""

    kind: str
    keys: int
    max_keys: int
    evictions: int
    expired: int
    alerts: int


def _runner(spec: StatefulSpec, max_keys: int, lateness_s: float) -> Runner[Any]:
    if isinstance(spec, ThresholdSpec):
        return ThresholdRunner(spec, max_keys, lateness_s)
    if isinstance(spec, ValueCountSpec):
        return ValueCountRunner(spec, max_keys, lateness_s)
    if isinstance(spec, SequenceSpec):
        return SequenceRunner(spec, max_keys, lateness_s)
    if isinstance(spec, FirstSeenSpec):
        return FirstSeenRunner(spec, max_keys, lateness_s)
    raise SpecError(f"not a stateful spec: {spec!r}")


class StatefulDetector:
    """A `Detector` for stateful rules. Time is the events' own (replaying a log gives the same alerts).

    Events up to `lateness_s` seconds older than the newest seen still count; state idle for longer
    than a rule's window (plus that lateness) is dropped; each rule keeps at most `max_keys` keys
    (its own `max_keys` first), evicting the least recently used and counting evictions.
    """

    def __init__(
        self,
        specs: Iterable[StatefulSpec],
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        lateness_s: float = DEFAULT_LATENESS_S,
        hostname: str = "",
        time_format: TimeFormat = TimeFormat.ISO8601,
    ) -> None:
        if max_keys < 1:
            raise SpecError(f"max_keys must be at least 1, not {max_keys}")
        self.runners: list[Runner[Any]] = []
        seen: set[str] = set()
        for spec in specs:
            if spec.name in seen:
                raise SpecError(f"two stateful rules are named {spec.name!r}")
            seen.add(spec.name)
            runner = _runner(spec, max_keys, lateness_s)
            runner.hostname = hostname
            runner.time_format = TimeFormat(time_format)
            self.runners.append(runner)
        self.lateness_ns = int(lateness_s * NS_PER_SECOND)
        self.watermark_ns = 0
        self.events = 0  # events selected by some rule
        self._buckets: dict[tuple[object, ...], _Bucket] = {}

    @property
    def specs(self) -> list[StatefulSpec]:
        return [runner.spec for runner in self.runners]

    def _bucket(self, key: IndexKey) -> _Bucket:
        """One function selecting, among the rules an event with these index values can match, those it does."""
        if len(self._buckets) >= _MAX_BUCKETS:
            self._buckets.clear()
        selected = [(runner.match, runner) for runner in self.admitted(key)]
        found = self._buckets[key] = fuse(selected, key=key)
        return found

    def detect(self, ctx: EventContext) -> list[Alert]:
        """The alerts this event completes (one per rule at most)."""
        key = index_key(ctx.event)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._bucket(key)
        selected = bucket(ctx)
        if not selected:
            return []
        return self.process(ctx, selected)

    def admitted(self, key: tuple[object, ...]) -> list[Runner[Any]]:
        """The rules an event with these (stage, verb, resource, subresource) values can match, in order."""
        return [runner for runner in self.runners if runner.admits is None or runner.admits(key)]

    def process(self, ctx: EventContext, selected: Iterable[Runner[Any]]) -> list[Alert]:
        """Feed the event to the rules whose condition it matches (`selected`, some of `self.runners`)."""
        alerts: list[Alert] = []
        now = self._advance(ctx)
        for runner in selected:
            alert = runner.process(ctx, now)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _advance(self, ctx: EventContext) -> int:
        """The time of an event some rule selected; moves the watermark and expires state now and then."""
        now = event_time_ns(ctx.event) or self.watermark_ns
        if now > self.watermark_ns:
            self.watermark_ns = now
        self.events += 1
        if self.events % _EXPIRE_EVERY == 0:
            self.expire()
        return now

    def expire(self) -> None:
        """Drop every key idle for longer than its rule can still use it."""
        for runner in self.runners:
            runner.store.expire(self.watermark_ns - runner.horizon_ns)

    def stats(self) -> dict[str, RuleStats]:
        """Per rule name: keys held, the limit, evictions, expiries and alerts so far."""
        return {
            runner.name: RuleStats(
                kind=runner.kind,
                keys=len(runner.store),
                max_keys=runner.store.max_keys,
                evictions=runner.store.evictions,
                expired=runner.store.expired,
                alerts=runner.alerts,
            )
            for runner in self.runners
        }

    @property
    def evictions(self) -> int:
        """Keys evicted by the key limits, over all rules."""
        return sum(runner.store.evictions for runner in self.runners)

    def save(self, path: str) -> None:
        """Write all state to `path` atomically (temporary file, fsync, rename)."""
        from kubetrail.detect.stateful.checkpoint import save_checkpoint

        save_checkpoint(self, path)

    def load(self, path: str) -> None:
        """Replace all state with the checkpoint at `path` (rules it does not know are ignored)."""
        from kubetrail.detect.stateful.checkpoint import load_checkpoint

        load_checkpoint(self, path)
