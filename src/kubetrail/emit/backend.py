"""The audit backend interface, shaped like kube-apiserver's `audit.Backend`.

Backends are small; behaviour such as buffering, truncation or fan-out *wraps* another
backend (`Truncating(Buffered(Webhook(...)))`) instead of being copied into each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from kubetrail.errors import KubetrailError
from kubetrail.model.event import Event


class BackendError(KubetrailError):
    """A backend that cannot be configured or cannot deliver events."""


@runtime_checkable
class Backend(Protocol):
    """Something that accepts audit events: a log file, a webhook, a wrapper around another backend."""

    def process_events(self, events: Sequence[Event]) -> bool:
        """Hand events over; True when all were accepted (written, sent or buffered)."""
        ...

    def run(self) -> None:
        """Start any background work (flush loops); a no-op for synchronous backends."""
        ...

    def shutdown(self) -> None:
        """Flush everything buffered and stop; events that cannot be delivered are counted and logged."""
        ...

    def name(self) -> str:
        """A short name for logs and metrics, e.g. `log`, `webhook`, `buffered<webhook>`."""
        ...
