"""Fan alerts out to every output, each behind its own filter, rate limit, queue and thread.

A slow or failing output (a webhook that times out, a syslog server that is down) delays or loses only its own
alerts: every drop is counted per output and reason (`below_min_priority` is filtering, not loss;
`rate_limited`, `queue_full` and `failed` are losses, also logged).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from kubetrail.alert.outputs.base import Output
from kubetrail.alert.outputs.ratelimit import TokenBucket
from kubetrail.detect.alert import Alert
from kubetrail.detect.priority import Priority

log = logging.getLogger(__name__)

DEFAULT_QUEUE_BATCHES = 1024
_LOG_EVERY_SECONDS = 10.0


@dataclass
class OutputStats:
    """Counts of alerts per fate, for one output."""

    sent: int = 0
    below_min_priority: int = 0
    rate_limited: int = 0
    queue_full: int = 0
    failed: int = 0

    @property
    def lost(self) -> int:
        return self.rate_limited + self.queue_full + self.failed


@dataclass
class Route:
    """An output with its filter and limit: alerts below `min_priority` are skipped, above `bucket` dropped."""

    output: Output
    min_priority: Priority = Priority.DEBUG
    bucket: TokenBucket | None = None
    queue_batches: int = DEFAULT_QUEUE_BATCHES
    stats: OutputStats = field(default_factory=OutputStats)

    def admit(self, alerts: Sequence[Alert]) -> list[Alert]:
        """The alerts this output takes now (counting the others)."""
        kept: list[Alert] = []
        for alert in alerts:
            if not alert.priority.at_least(self.min_priority):
                self.stats.below_min_priority += 1
            elif self.bucket is not None and not self.bucket.take():
                self.stats.rate_limited += 1
            else:
                kept.append(alert)
        return kept


_STOP = object()


class _Worker:
    """One output's thread: delivers queued batches in order; a failure costs that batch only."""

    def __init__(self, route: Route, block: bool) -> None:
        self.route = route
        self.block = block
        self.queue: queue.Queue[object] = queue.Queue(maxsize=route.queue_batches)
        self._last_log = 0.0
        self._unlogged = 0
        self.thread = threading.Thread(target=self._run, name=f"kubetrail-output-{route.output.name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is _STOP:
                    return
                assert isinstance(item, list)
                self._deliver(item)
            finally:
                self.queue.task_done()

    def _deliver(self, alerts: list[Alert]) -> None:
        stats = self.route.stats
        try:
            self.route.output.send(alerts)
        except Exception as error:  # one output's failure must not stop the others
            stats.failed += len(alerts)
            self.warn(f"could not deliver {len(alerts)} alerts: {error}")
        else:
            stats.sent += len(alerts)

    def warn(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last_log >= _LOG_EVERY_SECONDS:
            more = f" ({self._unlogged} similar messages suppressed)" if self._unlogged else ""
            log.warning("output %s: %s%s", self.route.output.name, text, more)
            self._last_log = now
            self._unlogged = 0
        else:
            self._unlogged += 1

    def offer(self, alerts: list[Alert]) -> None:
        try:
            self.queue.put(alerts, block=self.block)
        except queue.Full:
            self.route.stats.queue_full += len(alerts)
            self.warn(f"queue full, dropped {len(alerts)} alerts")

    def close(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.queue.put(_STOP, timeout=0.05)
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    break
        self.thread.join(max(0.0, deadline - time.monotonic()))
        try:
            self.route.output.close()
        except Exception as error:
            log.warning("output %s: closing failed: %s", self.route.output.name, error)


class Outputs:
    """Every configured output; `send` never raises, and never waits for delivery unless `block` is set.

    `block=True` suits batch runs (`kubetrail detect`): a full queue makes the caller wait instead of dropping.
    """

    def __init__(self, routes: Sequence[Route], *, block: bool = False) -> None:
        self.routes = tuple(routes)
        self._workers = [_Worker(route, block) for route in self.routes]
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.routes)

    def send(self, alerts: Sequence[Alert]) -> None:
        """Queue alerts for every output that admits them."""
        if not alerts:
            return
        with self._lock:
            for worker in self._workers:
                limited = worker.route.stats.rate_limited
                kept = worker.route.admit(alerts)
                if worker.route.stats.rate_limited > limited:
                    worker.warn(f"rate limit reached, dropped {worker.route.stats.rate_limited - limited} alerts")
                if kept:
                    worker.offer(kept)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued batch was delivered or failed; False when `timeout` ran out first."""
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            while worker.queue.unfinished_tasks:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)
        return True

    def summary(self) -> list[str]:
        """One line per output: what it delivered and every alert it lost, by reason."""
        lines = []
        for route in self.routes:
            stats = route.stats
            lines.append(
                f"output {route.output.name}: {stats.sent} sent, {stats.below_min_priority} below min_priority, "
                f"{stats.rate_limited} rate limited, {stats.queue_full} dropped (queue full), {stats.failed} failed"
            )
        return lines

    def stats(self) -> dict[str, OutputStats]:
        return {route.output.name: route.stats for route in self.routes}

    def close(self, timeout: float = 30.0) -> None:
        """Deliver what is queued (up to `timeout`), then stop the threads and close the outputs."""
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.close(max(0.1, deadline - time.monotonic()))
