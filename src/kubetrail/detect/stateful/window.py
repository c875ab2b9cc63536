"""Counting rules over a sliding event-time window: event counts (thresholds) and distinct values."""

from __future__ import annotations

from bisect import insort
from typing import Any

from kubetrail.detect.alert import Alert
from kubetrail.detect.context import EventContext
from kubetrail.detect.stateful.runner import Runner
from kubetrail.detect.stateful.spec import (
    NS_PER_SECOND,
    ThresholdSpec,
    ValueCountSpec,
    field_accessor,
    format_duration,
)


class CountState:
    """The times of a group's latest matching events (at most `count`, sorted) and its alert mute."""

    __slots__ = ("muted_until", "times")

    def __init__(self, times: list[int] | None = None, muted_until: int = 0) -> None:
        self.times = times if times is not None else []
        self.muted_until = muted_until


class ThresholdRunner(Runner[CountState]):
    """Fires when `count` events of one group fall within the window, then stays quiet for one window."""

    kind = "threshold"

    def __init__(self, spec: ThresholdSpec, max_keys: int, lateness_s: float) -> None:
        super().__init__(spec, spec.group_by, max_keys, spec.window_s + lateness_s)
        self.count = spec.count
        self.window_ns = int(spec.window_s * NS_PER_SECOND)
        self.evidence = {"stateful.count": str(spec.count), "stateful.window": format_duration(spec.window_s)}

    def process(self, ctx: EventContext, now_ns: int) -> Alert | None:
        key = self.key_of(ctx)
        state = self.store.touch(key, now_ns, CountState)
        times = state.times
        if not times or now_ns >= times[-1]:
            times.append(now_ns)
        else:
            insort(times, now_ns)
        latest = times[-1]
        while times and times[0] <= latest - self.window_ns:
            del times[0]
        if len(times) > self.count:
            del times[: len(times) - self.count]
        if len(times) < self.count or latest < state.muted_until:
            return None
        state.muted_until = latest + self.window_ns
        return self.alert(ctx, now_ns, key, dict(self.evidence))

    def encode(self, state: CountState) -> Any:
        return [state.times, state.muted_until]

    def decode(self, data: Any) -> CountState:
        times, muted_until = data
        return CountState([int(time) for time in times], int(muted_until))


class DistinctState:
    """A group's distinct values, each with when it was last seen (oldest first), and its alert mute."""

    __slots__ = ("muted_until", "values")

    def __init__(self, values: dict[object, int] | None = None, muted_until: int = 0) -> None:
        self.values = values if values is not None else {}
        self.muted_until = muted_until


class ValueCountRunner(Runner[DistinctState]):
    """Fires when one group shows `count` distinct values of a field within the window (once per window)."""

    kind = "value_count"

    def __init__(self, spec: ValueCountSpec, max_keys: int, lateness_s: float) -> None:
        super().__init__(spec, spec.group_by, max_keys, spec.window_s + lateness_s)
        self.value_of = field_accessor(spec.field, spec.accessors)
        self.count = spec.count
        self.window_ns = int(spec.window_s * NS_PER_SECOND)
        self.evidence = {
            "stateful.distinct": str(spec.count),
            "stateful.field": spec.field,
            "stateful.window": format_duration(spec.window_s),
        }

    def process(self, ctx: EventContext, now_ns: int) -> Alert | None:
        value = self.value_of(ctx)
        if value is None:
            return None
        seen = tuple(value) if isinstance(value, list) else value
        key = self.key_of(ctx)
        state = self.store.touch(key, now_ns, DistinctState)
        values = state.values
        previous = values.pop(seen, None)
        values[seen] = now_ns if previous is None else max(previous, now_ns)
        cutoff = now_ns - self.window_ns
        while values:
            oldest = next(iter(values))
            if values[oldest] > cutoff:
                break
            del values[oldest]
        while len(values) > self.count:
            del values[next(iter(values))]
        if len(values) < self.count or now_ns < state.muted_until:
            return None
        state.muted_until = now_ns + self.window_ns
        return self.alert(ctx, now_ns, key, dict(self.evidence))

    def encode(self, state: DistinctState) -> Any:
        pairs = [[list(value) if isinstance(value, tuple) else value, when] for value, when in state.values.items()]
        return [pairs, state.muted_until]

    def decode(self, data: Any) -> DistinctState:
        pairs, muted_until = data
        values: dict[object, int] = {}
        for value, when in pairs:
            values[tuple(value) if isinstance(value, list) else value] = int(when)
        return DistinctState(values, int(muted_until))
