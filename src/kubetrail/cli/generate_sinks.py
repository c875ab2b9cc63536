"""Where `kubetrail generate` can send its stream besides plain NDJSON: the apiserver's two backends.

A rotated set is written by the log backend exactly as kube-apiserver's `--audit-log-*` flags would write it,
with the simulated time as the rotation clock (so backup names are reproducible); a webhook receives
EventList POSTs from the webhook backend, as kube-apiserver's `--audit-webhook-config-file` would send them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from kubetrail.emit.kubeconfig import WebhookClientConfig, load_kubeconfig
from kubetrail.emit.logbackend import LogBackend
from kubetrail.emit.options import AuditLogOptions
from kubetrail.emit.webhook import WebhookBackend
from kubetrail.model.event import Event
from kubetrail.model.microtime import parse_microtime

DEFAULT_WEBHOOK_BATCH = 400  # the apiserver's --audit-webhook-batch-max-size


@dataclass
class SinkResult:
    """What a sink did with the stream."""

    written: int = 0
    failed: int = 0


class _SimulatedClock:
    """The time of the last event written: rotation and clean-up follow the generated timeline."""

    def __init__(self) -> None:
        self.now = datetime(1970, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _batches(events: Iterator[Event], size: int) -> Iterator[list[Event]]:
    batch: list[Event] = []
    for event in events:
        batch.append(event)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def write_rotated(events: Iterator[Event], options: AuditLogOptions) -> SinkResult:
    """Write through the log backend with rotation (`max_size` MB, `max_backups`, `max_age` days, gzip)."""
    clock = _SimulatedClock()
    backend = LogBackend(options.writer(clock), options.format)
    result = SinkResult()
    try:
        for batch in _batches(events, 256):
            clock.now = parse_microtime(batch[-1].stageTimestamp or batch[-1].requestReceivedTimestamp)
            if backend.process_events(batch):
                result.written += len(batch)
            else:
                result.failed += len(batch)
    finally:
        backend.shutdown()
    return result


def webhook_config(url: str | None, kubeconfig: str | None) -> WebhookClientConfig:
    """The webhook to POST to: a kubeconfig file (as the apiserver takes it) or a plain URL."""
    if kubeconfig is not None:
        return load_kubeconfig(kubeconfig)
    assert url is not None
    return WebhookClientConfig(server=url, source="--webhook")


def post_to_webhook(
    events: Iterator[Event], config: WebhookClientConfig, batch_size: int, *, initial_backoff: float
) -> SinkResult:
    """POST EventLists of `batch_size` with the apiserver's retries; undelivered events are counted."""
    backend = WebhookBackend(config, initial_backoff=initial_backoff)
    result = SinkResult()
    try:
        for batch in _batches(events, batch_size):
            if backend.process_events(batch):
                result.written += len(batch)
            else:
                result.failed += len(batch)
    finally:
        backend.shutdown()
    return result
