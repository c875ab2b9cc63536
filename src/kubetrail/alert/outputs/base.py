"""What every alert output is: something that delivers a batch of alerts, or raises `OutputError`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kubetrail.detect.alert import Alert
from kubetrail.errors import KubetrailError


class OutputError(KubetrailError):
    """An output that could not deliver (or be set up); names the output and, for config, the file and line."""

    def __init__(
        self, message: str, *, output: str = "", file: str = "", line: int | None = None, hint: str = ""
    ) -> None:
        self.message = message
        self.output = output
        self.file = file
        self.line = line
        self.hint = hint
        where = file if line is None else f"{file}:{line}" if file else f"line {line}"
        prefix = ": ".join(part for part in (where, output) if part)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class Output(Protocol):
    """One destination. `send` is called from a single worker thread; it raises OutputError when delivery fails."""

    name: str

    def send(self, alerts: Sequence[Alert]) -> None: ...

    def close(self) -> None: ...
