"""Backoff and the polling loop every pull source shares."""

from __future__ import annotations

import random

from kubetrail.sources.base import FAILING_AFTER, Backoff, PollingSource


def test_full_jitter_stays_within_a_doubling_capped_ceiling_and_a_success_starts_over() -> None:
    random.seed(1)
    backoff = Backoff(base=0.5, cap=4.0)
    ceilings = []
    for _ in range(6):
        delay = backoff.next_delay()
        ceilings.append(backoff.ceiling())
        assert 0.0 <= delay <= backoff.ceiling()
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.ceiling() == 0.5


class Flaky(PollingSource):
    def __init__(self, outcomes: list[Exception | int]) -> None:
        super().__init__("flaky", poll_interval=2.0, backoff=Backoff(base=1.0, cap=8.0, jitter=lambda ceiling: ceiling))
        self.outcomes = outcomes

    def poll_once(self) -> int:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def is_throttle(self, error: Exception) -> bool:
        return isinstance(error, TimeoutError)


def test_failures_back_off_throttles_are_counted_apart_and_health_names_the_source() -> None:
    source = Flaky([TimeoutError("slow down"), *[OSError("unreachable")] * FAILING_AFTER, 3, 0])
    waits = [source.step() for _ in range(FAILING_AFTER - 1)]
    assert waits == [1.0, 2.0, 4.0, 8.0]
    assert source.health() is None
    assert source.step() == 8.0
    problem = source.health()
    assert problem is not None and "flaky" in problem and "unreachable" in problem
    assert (source.stats.throttled, source.stats.errors) == (1, FAILING_AFTER - 1)
    assert source.step() == 8.0
    assert source.step() == 0.0  # delivered: go on at once
    assert source.health() is None and source.stats.consecutive_failures == 0
    assert source.step() == 2.0  # nothing new: the poll interval
