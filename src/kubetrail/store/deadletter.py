"""The dead-letter file: every input that was refused, with the reason, so that nothing is dropped silently."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import msgspec

MAX_RAW_BYTES = 1 << 20


class DeadLetter(msgspec.Struct, omit_defaults=True):
    """One refused input: when, from where (file:line, or a receiver's remote address), why, and the bytes."""

    time: str
    source: str
    reason: str
    raw: str
    line: int | None = None
    cluster: str = ""
    truncated: bool = False


_encoder = msgspec.json.Encoder()


class DeadLetterWriter:
    """Appends dead letters to `deadletter/YYYY-MM-DD.ndjson` (one file per UTC day); thread-safe."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._lock = threading.Lock()
        self._handle: int | None = None
        self._day = ""
        self.count = 0

    def path_for(self, day: str) -> Path:
        return self._directory / f"{day}.ndjson"

    @property
    def current_path(self) -> Path | None:
        return self.path_for(self._day) if self._day else None

    def write(self, *, source: str, reason: str, raw: bytes, line: int | None = None, cluster: str = "") -> None:
        now = datetime.now(UTC)
        truncated = len(raw) > MAX_RAW_BYTES
        letter = DeadLetter(
            time=now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            source=source,
            reason=reason,
            raw=raw[:MAX_RAW_BYTES].decode("utf-8", errors="backslashreplace"),
            line=line,
            cluster=cluster,
            truncated=truncated,
        )
        data = _encoder.encode(letter) + b"\n"
        day = now.strftime("%Y-%m-%d")
        with self._lock:
            if self._handle is None or day != self._day:
                self._reopen(day)
            assert self._handle is not None
            view = memoryview(data)
            while view:
                view = view[os.write(self._handle, view) :]
            self.count += 1

    def _reopen(self, day: str) -> None:
        self._close_handle()
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._handle = os.open(self.path_for(day), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._day = day

    def _close_handle(self) -> None:
        if self._handle is not None:
            os.fsync(self._handle)
            os.close(self._handle)
            self._handle = None

    def flush(self) -> None:
        with self._lock:
            if self._handle is not None:
                os.fsync(self._handle)

    def close(self) -> None:
        with self._lock:
            self._close_handle()
