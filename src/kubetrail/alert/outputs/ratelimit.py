"""A token bucket: at most `rate` alerts per second on average, with bursts of up to `burst`."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$", re.IGNORECASE)
_PER = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}


@dataclass(frozen=True)
class Rate:
    """`count` alerts per `seconds`; the bucket holds `count` tokens unless a burst is given."""

    count: float
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds


def parse_rate(text: str) -> Rate:
    """`10/s`, `100/m`, `1000/h` → Rate; raises ValueError for anything else."""
    match = _RATE.match(str(text))
    if not match or float(match[1]) <= 0:
        raise ValueError(f"{text!r} is not a rate")
    return Rate(float(match[1]), _PER[match[2].lower()])


class TokenBucket:
    """Refills continuously; `take()` spends one token or answers False (the caller counts the drop)."""

    def __init__(self, rate: Rate, burst: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = rate.per_second
        self.capacity = float(burst if burst is not None else max(1.0, rate.count))
        self.tokens = self.capacity
        self._clock = clock
        self._last = clock()

    def take(self) -> bool:
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._last = now
        self.tokens = min(self.capacity, self.tokens + elapsed * self.per_second)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
