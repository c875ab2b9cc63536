"""Exponential back-off with jitter, exactly as kube-apiserver's webhook clients retry.

`wait.Backoff` semantics (k8s.io/apimachinery/pkg/util/wait): at most `steps` attempts; before
attempt n+1 the caller sleeps `duration * factor**n` plus a uniform jitter of up to
`jitter * that`; a `cap` stops the growth. The webhook default (`DefaultRetryBackoffWithInitialDelay`)
is factor 1.5, jitter 0.2, 5 steps from `--audit-webhook-initial-backoff` (10s): sleeps of
10, 15, 22.5 and 33.75 s (each up to 20% longer), 81.25-97.5 s in all.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

DEFAULT_INITIAL_BACKOFF = 10.0


@dataclass(frozen=True, slots=True)
class Backoff:
    """The parameters of `wait.Backoff`: initial duration (seconds), growth factor, jitter, steps, cap."""

    duration: float
    factor: float = 1.5
    jitter: float = 0.2
    steps: int = 5
    cap: float = 0.0

    def step(self, steps: int, duration: float, rand: Callable[[], float]) -> tuple[float, float, int]:
        """One `wait.Backoff.Step`: (this sleep with jitter, next duration, remaining steps)."""
        if steps < 1:
            return (duration + rand() * self.jitter * duration if self.jitter > 0 else duration), duration, 0
        steps -= 1
        grown = duration * self.factor if self.factor else duration
        if self.cap > 0 and grown > self.cap:
            grown, steps = self.cap, 0
        wait = duration + rand() * self.jitter * duration if self.jitter > 0 else duration
        return wait, grown, steps

    def delays(self, rand: Callable[[], float] = random.random) -> Iterator[float]:
        """The sleeps between attempts (`steps - 1` of them), jitter drawn from `rand` in [0, 1)."""
        steps, duration = self.steps, self.duration
        while steps > 1:
            wait, duration, steps = self.step(steps, duration, rand)
            yield wait

    def window(self) -> tuple[float, float]:
        """The shortest and longest total sleep before the last attempt: how long a receiver may be down."""
        low = sum(self.delays(lambda: 0.0))
        high = sum(self.delays(lambda: 1.0))
        return low, high


def webhook_backoff(initial: float = DEFAULT_INITIAL_BACKOFF) -> Backoff:
    """The apiserver's webhook retry back-off for a given `--audit-webhook-initial-backoff`."""
    return Backoff(duration=initial, factor=1.5, jitter=0.2, steps=5)


def retry_on_error(error: Exception | None) -> bool:
    """The audit webhook's rule: every failure is retried (a dropped audit event is worse than a retry)."""
    return error is not None


def with_exponential_backoff(
    attempt: Callable[[], Exception | None],
    backoff: Backoff,
    *,
    should_retry: Callable[[Exception | None], bool] = retry_on_error,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
) -> Exception | None:
    """Call `attempt` until it returns None (success), a non-retriable error, or the steps run out.

    Returns None on success, else the last error; never raises what `attempt` returns.
    """
    steps, duration = backoff.steps, backoff.duration
    error: Exception | None = None
    while steps > 0:
        error = attempt()
        if error is None or not should_retry(error):
            return error
        if steps == 1:
            break
        wait, duration, steps = backoff.step(steps, duration, rand)
        sleep(wait)
    return error
