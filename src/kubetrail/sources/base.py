"""What every live source shares: the protocol serve runs, the counters `/metrics` shows, backoff, and a
polling loop with health.

A pull source (EKS CloudWatch Logs; GKE Pub/Sub pull; AKS Event Hub) subclasses PollingSource and writes
`poll_once`: fetch, decode with the intake, `deliver` to the pipeline, then checkpoint. A push source (Firehose;
Pub/Sub push) is an HTTP route and uses SourceStats and `deliver_async` the same way.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kubetrail.intake import Batch
from kubetrail.model.microtime import parse_microtime
from kubetrail.pipeline import Outcome, Pipeline

log = logging.getLogger(__name__)

FAILING_AFTER = 5
"""Consecutive failed polls after which a source is reported failing (in /readyz)."""


class Source(Protocol):
    """A door serve starts after the store is open and stops before it is closed."""

    name: str
    """The `source` label in metrics and messages, e.g. `eks-cloudwatch:prod`."""
    stats: SourceStats

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def health(self) -> str | None:
        """Why the source is failing, or None while it works."""
        ...


@dataclass
class SourceStats:
    """Counters of one source, read by `/metrics` (`kubetrail_source_*{source}`) and tests."""

    events: int = 0
    """Events stored for the first time."""
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    batches: int = 0
    errors: int = 0
    throttled: int = 0
    lag_seconds: float = 0.0
    consecutive_failures: int = 0
    last_error: str = ""

    def delivered(self, outcome: Outcome, batch: Batch) -> None:
        self.events += outcome.accepted
        self.duplicates += outcome.duplicates
        self.rejected += outcome.rejected
        self.skipped += sum(batch.skipped.values())
        self.batches += 1

    def failed(self, message: str, *, throttled: bool = False) -> None:
        self.consecutive_failures += 1
        self.last_error = message
        if throttled:
            self.throttled += 1
        else:
            self.errors += 1

    def succeeded(self) -> None:
        self.consecutive_failures = 0


def event_age(batch: Batch, now: float | None = None) -> float | None:
    """Seconds since the newest event of the batch happened (its stageTimestamp), None without events."""
    stamps = [event.stageTimestamp for event in batch.events if event.stageTimestamp]
    if not stamps:
        return None
    try:
        newest = max(parse_microtime(stamp).timestamp() for stamp in stamps)
    except ValueError:
        return None
    return max(0.0, (time.time() if now is None else now) - newest)


def deliver(pipeline: Pipeline, batch: Batch, cluster: str | None, source: str, stats: SourceStats) -> Outcome:
    """Store a batch durably (returns after the WAL fsync, raises when it could not) and count it."""
    outcome = pipeline.accept(batch, cluster, source=source)
    stats.delivered(outcome, batch)
    return outcome


async def deliver_async(
    pipeline: Pipeline, batch: Batch, cluster: str | None, source: str, stats: SourceStats
) -> Outcome:
    """`deliver` from an event loop (a push source's request handler)."""
    outcome = await pipeline.accept_async(batch, cluster, source=source)
    stats.delivered(outcome, batch)
    return outcome


class Backoff:
    """Exponential backoff with full jitter (AWS's recommendation for throttled APIs): after the n-th failure in
    a row, wait a random time in [0, min(cap, base * 2**(n-1))]; a success starts over."""

    def __init__(self, base: float = 0.5, cap: float = 60.0, jitter: Callable[[float], float] | None = None) -> None:
        self.base = base
        self.cap = cap
        self.jitter = jitter or (lambda ceiling: random.uniform(0.0, ceiling))
        self.failures = 0

    def ceiling(self) -> float:
        """The longest the next wait may be."""
        return min(self.cap, self.base * float(2 ** max(0, self.failures - 1)))

    def next_delay(self) -> float:
        """Count a failure and return how long to wait before trying again."""
        self.failures += 1
        return self.jitter(self.ceiling())

    def reset(self) -> None:
        self.failures = 0


class PollingSource:
    """A source that polls its cloud in a thread until stopped.

    `poll_once` does one round (returns how many records it delivered; raises on failure). A failure is
    counted, logged (throttled: at most once a minute per source) and waited out with backoff; a throttling
    error (`is_throttle`) counts as throttled, not as an error. After FAILING_AFTER failures in a row the source
    is reported failing until a round succeeds.
    """

    def __init__(
        self,
        name: str,
        *,
        poll_interval: float,
        backoff: Backoff | None = None,
    ) -> None:
        self.name = name
        self.poll_interval = poll_interval
        self.backoff = backoff or Backoff()
        self.stats = SourceStats()
        self.waits: list[float] = []
        """The backoff waits taken, most recent last (at most 100 kept), for tests and debugging."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_logged = 0.0

    # ----- for subclasses ------------------------------------------------------------------------------------

    def poll_once(self) -> int:
        raise NotImplementedError

    def is_throttle(self, error: Exception) -> bool:
        return False

    def describe(self, error: Exception) -> str:
        """One line about a failure (never credentials)."""
        return f"{type(error).__name__}: {error}"

    # ----- the loop -------------------------------------------------------------------------------------------

    def step(self) -> float:
        """One round; returns how long to wait before the next one."""
        try:
            delivered = self.poll_once()
        except Exception as error:
            throttled = self.is_throttle(error)
            self.stats.failed(self.describe(error), throttled=throttled)
            delay = self.backoff.next_delay()
            self.waits = [*self.waits[-99:], delay]
            self._log_failure(throttled, delay)
            return delay
        self.backoff.reset()
        self.stats.succeeded()
        return 0.0 if delivered else self.poll_interval

    def _log_failure(self, throttled: bool, delay: float) -> None:
        now = time.monotonic()
        if now - self._last_logged < 60.0 and self.stats.consecutive_failures > 1:
            return
        self._last_logged = now
        what = "throttled" if throttled else "failed"
        log.warning("source %s %s (%s); retrying in %.1f s", self.name, what, self.stats.last_error, delay)

    def run(self) -> None:
        while not self._stop.is_set():
            delay = self.step()
            if delay and self._stop.wait(delay):
                return

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=f"kubetrail-source-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current round (what it delivered is checkpointed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def health(self) -> str | None:
        if self.stats.consecutive_failures < FAILING_AFTER:
            return None
        return f"source {self.name} is failing ({self.stats.consecutive_failures} tries): {self.stats.last_error}"
