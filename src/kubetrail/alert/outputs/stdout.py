"""Alerts on standard output: Falco's text line, or Falco's JSON alert one per line."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import BinaryIO

from kubetrail.detect.alert import Alert


def encode_line(alert: Alert, fmt: str) -> bytes:
    """One alert as a line: `json` (Falco's JSON) or `text` (Falco's text output)."""
    return (alert.to_falco_json() if fmt == "json" else alert.output.encode()) + b"\n"


class StdoutOutput:
    """Writes to a binary stream (stdout unless given), flushing after every batch."""

    def __init__(self, *, fmt: str = "json", stream: BinaryIO | None = None, name: str = "stdout") -> None:
        self.name = name
        self.fmt = fmt
        self.stream = stream if stream is not None else sys.stdout.buffer

    def send(self, alerts: Sequence[Alert]) -> None:
        self.stream.write(b"".join(encode_line(alert, self.fmt) for alert in alerts))
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()
