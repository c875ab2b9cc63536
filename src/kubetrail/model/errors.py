"""Errors of the model area: malformed events name their source, line and field."""

from __future__ import annotations

from kubetrail.errors import KubetrailError


class EventDecodeError(KubetrailError, ValueError):
    """An audit event that cannot be decoded; carries where it came from and what is wrong."""

    def __init__(self, message: str, *, source: str = "<input>", line: int | None = None) -> None:
        self.message = message
        self.source = source
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")
