"""Fan-out: one backend that hands every event to several, like the apiserver's `audit.Union`."""

from __future__ import annotations

from collections.abc import Sequence

from kubetrail.emit.backend import Backend
from kubetrail.model.event import Event


class Union:
    """Every backend gets every event; succeeds only when all of them do. `name()` is `union[a,b]`."""

    def __init__(self, backends: Sequence[Backend]) -> None:
        self.backends = tuple(backends)

    def process_events(self, events: Sequence[Event]) -> bool:
        success = True
        for backend in self.backends:
            success = backend.process_events(events) and success
        return success

    def run(self) -> None:
        for backend in self.backends:
            backend.run()

    def shutdown(self) -> None:
        for backend in self.backends:
            backend.shutdown()

    def name(self) -> str:
        return f"union[{','.join(backend.name() for backend in self.backends)}]"


def union(*backends: Backend | None) -> Backend | None:
    """Combine the given backends (None ones skipped): None, the only one, or a Union of them."""
    present = [backend for backend in backends if backend is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return Union(present)
