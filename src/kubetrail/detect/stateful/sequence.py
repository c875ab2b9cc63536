"""Sequences: the steps' events happen for the same key within a time bound, in order or in any order."""

from __future__ import annotations

from typing import Any

from kubetrail.detect.alert import Alert
from kubetrail.detect.context import EventContext
from kubetrail.detect.stateful.runner import Runner
from kubetrail.detect.stateful.spec import NS_PER_SECOND, SequenceSpec, format_duration

_NONE = -1


class SequenceRunner(Runner[list[int]]):
    """Per key, one time per step (or -1).

    Ordered: `starts[i]` is the start time of the latest partial sequence that has reached step i
    (the latest start gives the best chance to finish within the bound). Unordered: `starts[i]` is
    when step i last matched. A completed sequence fires and the key starts over.
    """

    kind = "sequence"

    def __init__(self, spec: SequenceSpec, max_keys: int, lateness_s: float) -> None:
        super().__init__(spec, spec.by, max_keys, spec.within_s + lateness_s)
        self.steps = spec.steps
        self.last = len(spec.steps) - 1
        self.ordered = spec.ordered
        self.within_ns = int(spec.within_s * NS_PER_SECOND)
        self.evidence = {"stateful.steps": str(len(spec.steps)), "stateful.within": format_duration(spec.within_s)}

    @property
    def signature(self) -> str:
        return f"{self.kind}/{len(self.steps)}/{'ordered' if self.ordered else 'any'}"

    def process(self, ctx: EventContext, now_ns: int) -> Alert | None:
        matched = [index for index, step in enumerate(self.steps) if step(ctx)]
        if not matched:
            return None
        key = self.key_of(ctx)
        if self.ordered and matched[0] != 0 and self.store.get(key) is None:
            return None
        starts = self.store.touch(key, now_ns, self._fresh)
        done = (
            self._advance_ordered(starts, matched, now_ns)
            if self.ordered
            else self._advance_any(starts, matched, now_ns)
        )
        if not done:
            return None
        self.store.discard(key)
        return self.alert(ctx, now_ns, key, dict(self.evidence))

    def _fresh(self) -> list[int]:
        return [_NONE] * len(self.steps)

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

    def _advance_any(self, starts: list[int], matched: list[int], now_ns: int) -> bool:
        for index in matched:
            starts[index] = max(starts[index], now_ns)
        oldest = now_ns - self.within_ns
        return all(start != _NONE and start >= oldest for start in starts)

    def encode(self, state: list[int]) -> Any:
        return state

    def decode(self, data: Any) -> list[int]:
        return [int(value) for value in data]
