"""The truncating wrapper: keep events and batches under size limits, like the apiserver's `truncate` plugin.

Rules (k8s.io/apiserver/plugin/pkg/audit/truncate): an event's size is its JSON encoding plus the
encoder's trailing newline. An event above `max_event_size` at level Request or RequestResponse
loses `requestObject` and `responseObject` and gains the annotation `audit.k8s.io/truncated: "true"`;
an event still too big (or a Metadata one) is dropped, counted and logged. Events then go to the
delegate in order, in batches whose summed sizes stay within `max_batch_size`. Dropped events do
not make `process_events` fail; only the delegate's answers do.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from kubetrail.emit.backend import Backend, BackendError
from kubetrail.emit.plugin_error import handle_plugin_error
from kubetrail.model.codec import encode_event
from kubetrail.model.event import NO_BODY, Event, Level

PLUGIN_NAME = "truncate"
ANNOTATION_KEY = "audit.k8s.io/truncated"
ANNOTATION_VALUE = "true"
DEFAULT_MAX_EVENT_SIZE = 100 * 1024
DEFAULT_MAX_BATCH_SIZE = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TruncateConfig:
    """`--audit-<plugin>-truncate-max-event-size` and `-max-batch-size`, in bytes."""

    max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE

    def validate(self, plugin: str) -> None:
        """Reject what the apiserver rejects, with its messages."""
        if self.max_event_size <= 0:
            raise BackendError(
                f"invalid audit truncate {plugin} max event size {self.max_event_size}, must be a positive number"
            )
        if self.max_batch_size < self.max_event_size:
            raise BackendError(
                f"invalid audit truncate {plugin} max batch size {self.max_batch_size}, must be greater than "
                f"max event size ({self.max_event_size})"
            )


def event_size(event: Event) -> int:
    """Bytes the event takes once encoded, counting the JSON encoder's newline as the apiserver does."""
    return len(encode_event(event)) + 1


def truncated(event: Event) -> Event:
    """A copy without request and response bodies, annotated as truncated (the original is untouched)."""
    return msgspec.structs.replace(
        event,
        requestObject=NO_BODY,
        responseObject=NO_BODY,
        annotations={**event.annotations, ANNOTATION_KEY: ANNOTATION_VALUE},
    )


class Truncating:
    """Wraps a backend; `name()` is `truncate<delegate>`. Runs and shuts down the delegate with itself."""

    def __init__(self, delegate: Backend, config: TruncateConfig | None = None) -> None:
        self.delegate = delegate
        self.config = config or TruncateConfig()
        self.config.validate(delegate.name())
        self.truncated = 0
        self.dropped = 0
        self._lock = threading.Lock()

    def name(self) -> str:
        return f"{PLUGIN_NAME}<{self.delegate.name()}>"

    def run(self) -> None:
        self.delegate.run()

    def shutdown(self) -> None:
        self.delegate.shutdown()

    def process_events(self, events: Sequence[Event]) -> bool:
        max_event, max_batch = self.config.max_event_size, self.config.max_batch_size
        success = True
        batch: list[Event] = []
        batch_size = 0
        too_large: list[Event] = []
        cut = 0
        for event in events:
            size = event_size(event)
            if size > max_event and event.level.at_least(Level.REQUEST):
                event = truncated(event)
                size = event_size(event)
                cut += 1
            if size > max_event:
                too_large.append(event)
                continue
            if batch and batch_size + size > max_batch:
                success = self.delegate.process_events(batch) and success
                batch, batch_size = [], 0
            batch.append(event)
            batch_size += size
        if batch:
            success = self.delegate.process_events(batch) and success
        if cut or too_large:
            with self._lock:
                self.truncated += cut
                self.dropped += len(too_large)
        if too_large:
            handle_plugin_error(PLUGIN_NAME, BackendError("event is too large even after truncating"), too_large)
        return success
