"""A token-bucket throttle, as the apiserver's batching backend limits its batches per second.

Same semantics as client-go's `flowcontrol.NewTokenBucketRateLimiter(qps, burst)`: the bucket
starts full (`burst` tokens) and refills at `qps` tokens per second; `accept` takes a token,
waiting as long as needed. Clock and sleep are injectable so tests never wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from kubetrail.emit.backend import BackendError

DEFAULT_WEBHOOK_THROTTLE_QPS = 10.0
DEFAULT_WEBHOOK_THROTTLE_BURST = 15


class TokenBucket:
    """Allows `burst` calls at once, then `qps` calls per second on average; safe across threads."""

    def __init__(
        self,
        qps: float = DEFAULT_WEBHOOK_THROTTLE_QPS,
        burst: int = DEFAULT_WEBHOOK_THROTTLE_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if qps <= 0:
            raise BackendError(f"invalid throttle QPS {qps}, must be a positive number")
        if burst <= 0:
            raise BackendError(f"invalid throttle burst {burst}, must be a positive number")
        self.qps = float(qps)
        self.burst = int(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def _advance(self, now: float) -> None:
        elapsed = max(0.0, now - self._last)
        self._last = max(self._last, now)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.qps)

    def reserve(self) -> float:
        """Take a token now (the bucket may go into debt) and return how long to wait before using it."""
        with self._lock:
            self._advance(self._clock())
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def accept(self) -> None:
        """Block until a token is available, then take it."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)

    def try_accept(self) -> bool:
        """Take a token only if one is available right now."""
        with self._lock:
            self._advance(self._clock())
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True
