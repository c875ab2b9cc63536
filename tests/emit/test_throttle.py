"""The token bucket behind the webhook's batch throttle (10 QPS, burst 15)."""

from __future__ import annotations

import pytest

from kubetrail.emit.backend import BackendError
from kubetrail.emit.throttle import TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_burst_passes_at_once_then_qps_paces() -> None:
    time = FakeTime()
    bucket = TokenBucket(10, 15, clock=time.clock, sleep=time.sleep)
    for _ in range(15):
        bucket.accept()
    assert time.sleeps == []
    for _ in range(5):
        bucket.accept()
    assert time.sleeps == pytest.approx([0.1] * 5)
    assert time.now == pytest.approx(0.5)


def test_tokens_refill_over_time_up_to_the_burst() -> None:
    time = FakeTime()
    bucket = TokenBucket(10, 15, clock=time.clock, sleep=time.sleep)
    for _ in range(15):
        assert bucket.try_accept()
    assert not bucket.try_accept()
    time.now += 0.35
    assert [bucket.try_accept() for _ in range(4)] == [True, True, True, False]
    time.now += 100
    assert sum(bucket.try_accept() for _ in range(20)) == 15


def test_sixty_batches_at_default_throttle_take_four_and_a_half_seconds() -> None:
    time = FakeTime()
    bucket = TokenBucket(clock=time.clock, sleep=time.sleep)
    for _ in range(60):
        bucket.accept()
    assert time.now == pytest.approx((60 - 15) / 10)


@pytest.mark.parametrize(("qps", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_invalid_settings_are_refused(qps: float, burst: int) -> None:
    with pytest.raises(BackendError, match="must be a positive number"):
        TokenBucket(qps, burst)
