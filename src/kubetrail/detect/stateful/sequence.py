"""Sequences: the steps' events happen for the same key within a time bound, in order or in any order."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from kubetrail.detect.alert import Alert
from kubetrail.detect.context import EventContext
from kubetrail.detect.stateful.runner import Runner
from kubetrail.detect.stateful.spec import NS_PER_SECOND, SequenceSpec, format_duration

_NONE = -1


class SequenceRunner(Runner[list[int]]):
    """Per key, two times per step (-1 for none): `starts` then `latest`, one list.

    `starts[i]` is the start time of the latest partial sequence that has reached step i in arrival
    order (the latest start gives the best chance to finish within the bound); `latest[i]` is when
    step i last matched. An event up to the lateness older than the key's newest step completes a
    sequence when the steps' latest times are in order and within the bound. Unordered sequences
    only need every step's latest time within the bound. A completed sequence fires and the key
    starts over.
    """

    kind = "sequence"

    def __init__(self, spec: SequenceSpec, max_keys: int, lateness_s: float) -> None:
        super().__init__(spec, spec.by, max_keys, spec.within_s + lateness_s)
        self.steps = spec.steps
        self.count = len(spec.steps)
        self.last = self.count - 1
        self.ordered = spec.ordered
        self.within_ns = int(spec.within_s * NS_PER_SECOND)
        self.lateness_ns = int(lateness_s * NS_PER_SECOND)
        self.evidence = {"stateful.steps": str(self.count), "stateful.within": format_duration(spec.within_s)}

    @property
    def signature(self) -> str:
        return f"{self.kind}/{self.count}/{'ordered' if self.ordered else 'any'}"

    def process(self, ctx: EventContext, now_ns: int) -> Alert | None:
        matched = [index for index, step in enumerate(self.steps) if step(ctx)]
        if not matched:
            return None
        key = self.key_of(ctx)
        state = self.store.touch(key, now_ns, self._fresh)
        latest = state[self.count :]
        newest = max(latest)
        for index in matched:
            state[self.count + index] = max(state[self.count + index], now_ns)
        if self.ordered:
            done = self._advance_ordered(state, matched, now_ns)
            if not done and now_ns < newest <= now_ns + self.lateness_ns:
                done = self._in_order(state[self.count :])
        else:
            done = self._within(state[self.count :])
        if not done:
            return None
        self.store.discard(key)
        return self.alert(ctx, now_ns, key, dict(self.evidence))

    def _fresh(self) -> list[int]:
        return [_NONE] * (2 * self.count)

    def _advance_ordered(self, starts: list[int], matched: list[int], now_ns: int) -> bool:
        oldest = now_ns - self.within_ns
        for index in reversed(matched):
            if index == 0:
                starts[0] = max(starts[0], now_ns)
                continue
            start = starts[index - 1]
            if start == _NONE or start < oldest or start > now_ns:
                continue
            if index == self.last:
                return True
            starts[index] = max(starts[index], start)
        return False

    def _in_order(self, latest: list[int]) -> bool:
        if _NONE in latest or latest[-1] - latest[0] > self.within_ns:
            return False
        return all(earlier <= later for earlier, later in pairwise(latest))

    def _within(self, latest: list[int]) -> bool:
        return _NONE not in latest and max(latest) - min(latest) <= self.within_ns

    def encode(self, state: list[int]) -> Any:
        return state

    def decode(self, data: Any) -> list[int]:
        values = [int(value) for value in data]
        if len(values) != 2 * self.count:
            raise ValueError(f"expected {2 * self.count} step times, found {len(values)}")
        return values
