"""Batch mode: a buffer in front of another backend, like the apiserver's `buffered` audit plugin.

`process_events` only enqueues (never blocks the request); a worker thread takes batches of at
most `max_batch_size` events, waiting at most `max_batch_wait` for a batch to fill, optionally
throttled to `throttle_qps` batches per second with bursts of `throttle_burst`, and hands each
batch to the delegate inline or on a worker pool (`async_delegate`). When the buffer is full,
events are dropped, counted and logged, and `process_events` still returns True, as the apiserver's
buffered backend does (the request is never failed for audit's sake; `dropped` tells the loss). `shutdown` stops
intake, flushes everything buffered to the delegate, then shuts the delegate down.
Defaults follow kube-apiserver v1.33 (k8s.io/apiserver/pkg/server/options/audit.go).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from kubetrail.emit.backend import Backend, BackendError
from kubetrail.emit.plugin_error import handle_plugin_error
from kubetrail.emit.throttle import TokenBucket
from kubetrail.model.event import Event

log = logging.getLogger("kubetrail.emit")

DEFAULT_BATCH_BUFFER_SIZE = 10_000
DEFAULT_BATCH_MAX_SIZE = 400
DEFAULT_BATCH_MAX_WAIT = 30.0
DEFAULT_BATCH_THROTTLE_QPS = 10.0
DEFAULT_BATCH_THROTTLE_BURST = 15
PLUGIN_NAME = "buffered"
DROP_REPORT_INTERVAL = 10.0  # seconds between two log lines about dropped events
_DRAIN_LIMIT = 512  # events taken from a backed-up buffer per lock acquisition


@dataclass(frozen=True, slots=True)
class BatchConfig:
    """The `--audit-<plugin>-batch-*` options; durations in seconds."""

    buffer_size: int = DEFAULT_BATCH_BUFFER_SIZE
    max_batch_size: int = DEFAULT_BATCH_MAX_SIZE
    max_batch_wait: float = DEFAULT_BATCH_MAX_WAIT
    throttle_enable: bool = True
    throttle_qps: float = DEFAULT_BATCH_THROTTLE_QPS
    throttle_burst: int = DEFAULT_BATCH_THROTTLE_BURST
    async_delegate: bool = True

    @classmethod
    def for_webhook(cls) -> BatchConfig:
        """The webhook backend's defaults: buffer 10000, batches of 400 or every 30s, 10 QPS burst 15, async."""
        return cls()

    @classmethod
    def for_log(cls) -> BatchConfig:
        """The log backend's defaults: buffer 10000, one event per batch, no wait, no throttle, inline writes."""
        return cls(max_batch_size=1, max_batch_wait=0.0, throttle_enable=False, async_delegate=False)

    def validate(self, plugin: str) -> None:
        """Reject values the apiserver rejects in batch mode, with its messages."""
        if self.buffer_size <= 0:
            raise BackendError(
                f"invalid audit batch {plugin} buffer size {self.buffer_size}, must be a positive number"
            )
        if self.max_batch_size <= 0:
            raise BackendError(
                f"invalid audit batch {plugin} max batch size {self.max_batch_size}, must be a positive number"
            )
        if self.throttle_enable:
            if self.throttle_qps <= 0:
                raise BackendError(
                    f"invalid audit batch {plugin} throttle QPS {self.throttle_qps:g}, must be a positive number"
                )
            if self.throttle_burst <= 0:
                raise BackendError(
                    f"invalid audit batch {plugin} throttle burst {self.throttle_burst}, must be a positive number"
                )


class Buffered:
    """Wraps a backend in the apiserver's batch mode; `name()` is `buffered<delegate>`."""

    def __init__(
        self,
        delegate: Backend,
        config: BatchConfig | None = None,
        *,
        plugin: str = "",
        throttle: TokenBucket | None = None,
    ) -> None:
        self.delegate = delegate
        self.config = config or BatchConfig()
        self.config.validate(plugin or delegate.name())
        self.dropped = 0  # events refused: buffer full or backend shut down
        self.failed = 0  # events in batches the delegate did not fully accept
        self.batches = 0
        self._buffer: deque[Event] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._worker: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._unreported = 0
        self._last_report = -DROP_REPORT_INTERVAL
        self._throttle = throttle
        if throttle is None and self.config.throttle_enable:
            self._throttle = TokenBucket(self.config.throttle_qps, self.config.throttle_burst)

    def name(self) -> str:
        return f"buffered<{self.delegate.name()}>"

    def __len__(self) -> int:
        """Events waiting in the buffer."""
        return len(self._buffer)

    def process_events(self, events: Sequence[Event]) -> bool:
        """Enqueue without blocking; events that do not fit (or arrive after shutdown) are dropped and counted.

        Always True, like the apiserver's buffered backend: a full buffer never fails the request.
        """
        if not events:
            return True
        with self._cond:
            buffer = self._buffer
            was_empty = not buffer
            room = 0 if self._stopping else self.config.buffer_size - len(buffer)
            accepted = events if room >= len(events) else events[: max(room, 0)]
            buffer.extend(accepted)
            if accepted and (was_empty or len(buffer) >= self.config.max_batch_size):
                self._cond.notify()
            lost = len(events) - len(accepted)
            if not lost:
                return True
            self.dropped += lost
            self._unreported += lost
            reason = "audit backend is shut down" if self._stopping else "audit buffer queue blocked"
            now = time.monotonic()
            report = now - self._last_report >= DROP_REPORT_INTERVAL
            if report:
                self._last_report = now
                unreported, self._unreported = self._unreported, 0
        if report:
            error = BackendError(
                f"{reason}: dropped {unreported} event(s) since the last report, {self.dropped} in all"
            )
            handle_plugin_error(PLUGIN_NAME, error, events[len(accepted) :])
        return True

    def run(self) -> None:
        """Start the batching thread (and the delegate's background work)."""
        if self._worker is not None:
            return
        self.delegate.run()
        if self.config.async_delegate:
            self._pool = ThreadPoolExecutor(
                max_workers=max(2, self.config.throttle_burst), thread_name_prefix="kubetrail-audit-send"
            )
        self._worker = threading.Thread(target=self._loop, name=f"kubetrail-{self.name()}", daemon=True)
        self._worker.start()

    def shutdown(self) -> None:
        """Stop intake, deliver everything still buffered, wait for sends in flight, then stop the delegate."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join()
        else:
            self._loop()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._unreported:
            log.error("%s: %d audit event(s) dropped since the last report", self.name(), self._unreported)
            self._unreported = 0
        self.delegate.shutdown()

    def _collect(self) -> list[list[Event]] | None:
        """The next batches (several when the buffer is backed up); None once stopping and empty."""
        config = self.config
        with self._cond:
            buffer = self._buffer
            while not buffer and not self._stopping:
                self._cond.wait()
            if not buffer:
                return None
            if len(buffer) < config.max_batch_size and config.max_batch_wait > 0 and not self._stopping:
                deadline = time.monotonic() + config.max_batch_wait
                while len(buffer) < config.max_batch_size and not self._stopping:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            size = config.max_batch_size
            take = min(len(buffer), max(size, _DRAIN_LIMIT))
            if take > size:
                take -= take % size
            taken = [buffer.popleft() for _ in range(take)]
        return [taken[start : start + size] for start in range(0, take, size)]

    def _loop(self) -> None:
        while (batches := self._collect()) is not None:
            for batch in batches:
                self._deliver(batch)

    def _deliver(self, batch: list[Event]) -> None:
        if self._throttle is not None:
            self._throttle.accept()
        self.batches += 1
        if self._pool is not None:
            self._pool.submit(self._send, batch)
        else:
            self._send(batch)

    def _send(self, batch: list[Event]) -> None:
        try:
            delivered = self.delegate.process_events(batch)
        except Exception as error:
            with self._cond:
                self.failed += len(batch)
            handle_plugin_error(PLUGIN_NAME, error, batch)
            return
        if not delivered:
            with self._cond:
                self.failed += len(batch)
