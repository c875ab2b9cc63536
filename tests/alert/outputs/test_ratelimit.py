from __future__ import annotations

import pytest

from kubetrail.alert.outputs.ratelimit import Rate, TokenBucket, parse_rate


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "count", "seconds"),
    [("10/s", 10, 1), ("100/m", 100, 60), ("1000/h", 1000, 3600), (" 2.5 / second ", 2.5, 1), ("5/min", 5, 60)],
)
def test_parse_rate(text: str, count: float, seconds: float) -> None:
    assert parse_rate(text) == Rate(count, seconds)


@pytest.mark.parametrize("text", ["", "10", "10/d", "0/s", "-1/s", "ten/s", "10/s/s"])
def test_parse_rate_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(parse_rate("5/s"), clock=clock)
    assert [bucket.take() for _ in range(7)] == [True] * 5 + [False] * 2
    clock.now += 0.2  # one token back
    assert [bucket.take() for _ in range(2)] == [True, False]
    clock.now += 100  # refills only up to the capacity
    assert sum(bucket.take() for _ in range(10)) == 5


def test_bucket_burst_overrides_the_count() -> None:
    clock = Clock()
    bucket = TokenBucket(parse_rate("60/m"), burst=2, clock=clock)
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.now += 1.0
    assert bucket.take() is True
    assert bucket.take() is False
