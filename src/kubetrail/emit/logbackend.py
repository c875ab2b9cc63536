"""The log backend: audit events as lines in a file (rotated like the apiserver's) or on stdout.

Formats as kube-apiserver's `log` plugin (k8s.io/apiserver/plugin/pkg/audit/log, v1.33):
`json` writes each event as one line of `audit.k8s.io/v1` JSON, `legacy` the one-line text form
(see `kubetrail.emit.legacy`). Every event is one write to the file, so rotation happens between
events, never inside one; an event larger than the maximum file size is refused and counted.
`process_events` returns False when any event could not be written (the blocking mode ignores that,
blocking-strict reports it; see `kubetrail.emit.options`).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence
from typing import BinaryIO, Protocol

import msgspec

from kubetrail.emit.backend import BackendError
from kubetrail.emit.legacy import event_string
from kubetrail.model.event import Event

log = logging.getLogger("kubetrail.emit")

PLUGIN_NAME = "log"
FORMAT_JSON = "json"
FORMAT_LEGACY = "legacy"
ALLOWED_FORMATS = (FORMAT_JSON, FORMAT_LEGACY)


class RecordWriter(Protocol):
    """Where encoded lines go: a rotating file or a stream."""

    def write_records(self, records: Sequence[bytes]) -> int:
        """Write records in order; return how many were refused (too large). Raise OSError on I/O failure."""
        ...

    def close(self) -> None:
        """Finish: flush, release the file, wait for clean-up."""
        ...


class StreamWriter:
    """Writes records to a binary stream (stdout for `--audit-log-path -`), flushing after each batch."""

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout.buffer
        self._lock = threading.Lock()

    def write_records(self, records: Sequence[bytes]) -> int:
        with self._lock:
            self.stream.write(b"".join(records))
            self.stream.flush()
        return 0

    def close(self) -> None:
        with self._lock:
            self.stream.flush()


class LogBackend:
    """Encodes events one per line and hands them to a writer; counts what could not be written."""

    def __init__(self, writer: RecordWriter, format: str = FORMAT_JSON) -> None:
        if format not in ALLOWED_FORMATS:
            allowed = ",".join(ALLOWED_FORMATS)
            raise BackendError(f'invalid audit log format {format}, allowed formats are "{allowed}"')
        self.writer = writer
        self.format = format
        self.written = 0
        self.failed = 0
        self._encoder = msgspec.json.Encoder()
        self._counter_lock = threading.Lock()

    def encode(self, event: Event) -> bytes:
        """One event as the line this backend writes (newline included)."""
        if self.format == FORMAT_JSON:
            return self._encoder.encode(event) + b"\n"
        return (event_string(event) + "\n").encode()

    def process_events(self, events: Sequence[Event]) -> bool:
        if not events:
            return True
        if self.format == FORMAT_JSON:
            encode = self._encoder.encode
            records = [encode(event) + b"\n" for event in events]
        else:
            records = [(event_string(event) + "\n").encode() for event in events]
        try:
            refused = self.writer.write_records(records)
        except OSError as error:
            with self._counter_lock:
                self.failed += len(events)
            log.error("audit log: writing %d event(s) failed: %s", len(events), error)
            return False
        with self._counter_lock:
            self.written += len(events) - refused
            self.failed += refused
        return refused == 0

    def run(self) -> None:
        """Nothing runs in the background of the log backend itself."""

    def shutdown(self) -> None:
        """Close the file (waiting for compression and clean-up in progress)."""
        self.writer.close()

    def name(self) -> str:
        return PLUGIN_NAME
