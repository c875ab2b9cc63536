"""Alerts appended to a file, one Falco JSON alert per line, created owner-only (0600).

`fsync` says how durable a delivered alert is: `always` (fsync after every batch), `never` (the OS decides),
or a number of seconds (fsync at most that often, and on close).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from kubetrail.alert.outputs.base import OutputError
from kubetrail.alert.outputs.stdout import encode_line
from kubetrail.detect.alert import Alert

FILE_MODE = 0o600


class JsonlFileOutput:
    """Appends lines with O_APPEND, so several writers never interleave within a line."""

    def __init__(
        self, path: str | Path, *, fsync: str | float = "always", fmt: str = "json", name: str = "file"
    ) -> None:
        self.name = name
        self.path = Path(path)
        self.fmt = fmt
        self.fsync_every: float | None = 0.0 if fsync == "always" else None if fsync == "never" else float(fsync)
        self._last_sync = time.monotonic()
        self._dirty = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
            os.fchmod(self._fd, FILE_MODE)
        except OSError as error:
            raise OutputError(f"cannot open {self.path}: {error.strerror}", output=name) from None

    def send(self, alerts: Sequence[Alert]) -> None:
        data = b"".join(encode_line(alert, self.fmt) for alert in alerts)
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            self._dirty = True
            now = time.monotonic()
            if self.fsync_every is not None and now - self._last_sync >= self.fsync_every:
                os.fsync(self._fd)
                self._dirty = False
                self._last_sync = now
        except OSError as error:
            raise OutputError(f"cannot write {self.path}: {error.strerror}", output=self.name) from None

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            if self._dirty and self.fsync_every is not None:
                os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = -1
