"""First-seen rules: a key's value tuple that the baseline window has not seen, after a learning period."""

from __future__ import annotations

from typing import Any

from kubetrail.detect.alert import Alert
from kubetrail.detect.context import EventContext
from kubetrail.detect.stateful.runner import Runner
from kubetrail.detect.stateful.spec import NS_PER_SECOND, FirstSeenSpec, format_duration


class FirstSeenRunner(Runner[int]):
    """Per key, when it was first seen in the current baseline; its last sighting is the store's touch time.

    The learning period starts with the first event the rule selects (`started_ns`, kept in checkpoints).
    """

    kind = "first_seen"

    def __init__(self, spec: FirstSeenSpec, max_keys: int, lateness_s: float) -> None:
        super().__init__(spec, spec.key, max_keys, spec.baseline_s + lateness_s)
        self.baseline_ns = int(spec.baseline_s * NS_PER_SECOND)
        self.learn_ns = int(spec.learn_s * NS_PER_SECOND)
        self.evidence = {"stateful.baseline": format_duration(spec.baseline_s)}

    def process(self, ctx: EventContext, now_ns: int) -> Alert | None:
        key = self.key_of(ctx)
        last = self.store.refresh(key, now_ns)
        if last is not None and now_ns - last <= self.baseline_ns:
            return None
        if last is not None:
            self.store.discard(key)
        self.store.touch(key, now_ns, lambda: now_ns)
        if self.started_ns is None:
            self.started_ns = now_ns
        if now_ns < self.started_ns + self.learn_ns:
            return None
        return self.alert(ctx, now_ns, key, dict(self.evidence))

    def encode(self, state: int) -> Any:
        return state

    def decode(self, data: Any) -> int:
        return int(data)
