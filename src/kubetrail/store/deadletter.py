"""The dead-letter file: every input that was refused, with the reason, so that nothing is dropped silently.

`deadletter/YYYY-MM-DD.ndjson` (UTC days), one JSON object a line:

- a refused record: `time`, `source`, `reason`, `raw` (its bytes as text; `raw_base64` when they are not UTF-8),
  `line`, `cluster`;
- a group, for a batch that refused many records at once (GROUP_AT or more): the same fields, with `items` (how
  many), `raw` holding the records one a line, and `reason` their reasons counted. Per-record framing would cost
  far more than the records themselves when a batch holds thousands of tiny ones.

A day's file stops growing at `max_bytes_per_day`; what is refused after that is counted (`dropped`,
`dropped_bytes`, in /metrics) with one line saying so, never written, so a flood of garbage cannot fill the disk.
Dead letters older than the store's retention are removed with the data (`remove_before`).
"""

from __future__ import annotations

import base64
import os
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import msgspec

MAX_RAW_BYTES = 1 << 20
"""Bytes of one refused record kept at most (the rest is cut, `truncated`)."""
GROUP_AT = 16
"""A batch refusing at least this many records is written as one group."""
DEFAULT_MAX_BYTES_PER_DAY = 512 << 20


class DeadLetter(msgspec.Struct, omit_defaults=True):
    """One refused input (or a group of them): when, from where (file:line, or a receiver's address), why, bytes."""

    time: str
    source: str
    reason: str
    raw: str = ""
    raw_base64: str = ""
    line: int | None = None
    cluster: str = ""
    truncated: bool = False
    items: int = 0


@dataclass(frozen=True)
class Refused:
    """What a writer is given: the record's bytes, its reason and where it was."""

    raw: bytes
    reason: str
    line: int | None = None


_encoder = msgspec.json.Encoder()


def _text(raw: bytes) -> tuple[str, str, bool]:
    """(raw as text, raw as base64, truncated): text when the bytes are UTF-8, else base64 (at most 1.34x)."""
    truncated = len(raw) > MAX_RAW_BYTES
    kept = raw[:MAX_RAW_BYTES]
    try:
        return kept.decode("utf-8"), "", truncated
    except UnicodeDecodeError:
        return "", base64.b64encode(kept).decode("ascii"), truncated


class DeadLetterWriter:
    """Appends dead letters to `deadletter/YYYY-MM-DD.ndjson` (one file per UTC day); thread-safe."""

    def __init__(self, directory: Path, *, max_bytes_per_day: int = DEFAULT_MAX_BYTES_PER_DAY) -> None:
        self._directory = directory
        self._lock = threading.Lock()
        self._handle: int | None = None
        self._day = ""
        self._written_today = 0
        self.max_bytes_per_day = max_bytes_per_day
        self.count = 0
        self.bytes = 0
        self.dropped = 0
        self.dropped_bytes = 0

    def path_for(self, day: str) -> Path:
        return self._directory / f"{day}.ndjson"

    @property
    def current_path(self) -> Path | None:
        return self.path_for(self._day) if self._day else None

    def write(self, *, source: str, reason: str, raw: bytes, line: int | None = None, cluster: str = "") -> None:
        """Keep one refused record."""
        self.write_many(source=source, cluster=cluster, refused=[Refused(raw, reason, line)])

    def write_many(self, *, source: str, cluster: str, refused: Sequence[Refused]) -> None:
        """Keep the records one batch refused: one line each, or one group when there are many."""
        if not refused:
            return
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        letters: list[DeadLetter] = []
        if len(refused) < GROUP_AT:
            for item in refused:
                text, packed, truncated = _text(item.raw)
                letters.append(
                    DeadLetter(stamp, source, item.reason, text, packed, item.line, cluster, truncated=truncated)
                )
        else:
            reasons = Counter(item.reason.split(": ", 1)[-1] for item in refused)
            summary = "; ".join(f"{count} x {reason}" for reason, count in reasons.most_common(20))
            text, packed, truncated = _text(b"\n".join(item.raw.replace(b"\n", b" ") for item in refused))
            first = refused[0].line
            letters.append(
                DeadLetter(stamp, source, summary, text, packed, first, cluster, truncated, items=len(refused))
            )
        data = b"".join(_encoder.encode(letter) + b"\n" for letter in letters)
        self._append(now.strftime("%Y-%m-%d"), data, len(refused), stamp)

    def _append(self, day: str, data: bytes, records: int, stamp: str) -> None:
        with self._lock:
            if self._handle is None or day != self._day:
                self._reopen(day)
            assert self._handle is not None
            if self._written_today + len(data) > self.max_bytes_per_day:
                if not self.dropped:
                    notice = DeadLetter(
                        stamp,
                        "kubetrail",
                        f"the dead-letter file reached {self.max_bytes_per_day} bytes today; "
                        "further refused records are counted (kubetrail_store_dead_letters_dropped_total), not kept",
                    )
                    self._write_locked(_encoder.encode(notice) + b"\n")
                self.dropped += records
                self.dropped_bytes += len(data)
                return
            self._write_locked(data)
            self.count += records

    def _write_locked(self, data: bytes) -> None:
        assert self._handle is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._handle, view) :]
        self._written_today += len(data)
        self.bytes += len(data)

    def _reopen(self, day: str) -> None:
        self._close_handle()
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.path_for(day)
        self._handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._written_today = os.fstat(self._handle).st_size
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

    def remove_before(self, day: date) -> list[Path]:
        """Delete the files of days before `day` (retention); returns what was removed."""
        removed: list[Path] = []
        with self._lock:
            for path in sorted(self._directory.glob("*.ndjson")):
                try:
                    when = date.fromisoformat(path.stem)
                except ValueError:
                    continue
                if when < day and path.stem != self._day:
                    path.unlink(missing_ok=True)
                    removed.append(path)
        return removed

    def close(self) -> None:
        with self._lock:
            self._close_handle()
