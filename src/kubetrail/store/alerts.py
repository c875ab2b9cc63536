"""Alerts kept in the store: durable JSONL under `<store>/alerts/`, queryable as the DuckDB view `alerts`.

One file per UTC day of writing (`alerts-YYYY-MM-DD.jsonl`), appended and fsynced per batch; a line torn by a
crash is cut off when the log is opened again. Each line carries the view's columns plus Falco's remaining
alert keys (`source`, `hostname`, `output`), so the file alone can rebuild Falco's JSON alert.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import msgspec

from kubetrail.store.errors import StoreError

if TYPE_CHECKING:
    from kubetrail.detect.alert import Alert

ALERTS_DIR = "alerts"
FILE_PREFIX = "alerts-"
FILE_SUFFIX = ".jsonl"
FILE_MODE = 0o600
COLUMNS = {
    "time": "TIMESTAMP",
    "rule": "VARCHAR",
    "priority": "VARCHAR",
    "priority_rank": "INTEGER",
    "cluster": "VARCHAR",
    "audit_id": "VARCHAR",
    "message": "VARCHAR",
    "output_fields": "JSON",
    "tags": "VARCHAR[]",
    "mitre": "VARCHAR[]",
    "outcome": "VARCHAR",
}
_encoder = msgspec.json.Encoder()


def _sql_time(time_ns: int) -> str:
    """`YYYY-MM-DD HH:MM:SS.ffffff` (UTC), which DuckDB reads as a TIMESTAMP."""
    moment = datetime.fromtimestamp(time_ns // 1_000_000_000, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + f".{(time_ns % 1_000_000_000) // 1000:06d}"


def alert_record(alert: Alert) -> dict[str, Any]:
    """The stored form of an alert (a JSON object, one line)."""
    return {
        "time": _sql_time(alert.time_ns),
        "rule": alert.rule,
        "priority": alert.priority.label,
        "priority_rank": int(alert.priority),
        "cluster": alert.cluster,
        "audit_id": alert.audit_id,
        "message": alert.message,
        "output_fields": alert.output_fields,
        "tags": list(alert.tags),
        "mitre": list(alert.mitre),
        "threat_matrix": list(alert.threat_matrix),
        "outcome": alert.outcome,
        "source": alert.source,
        "hostname": alert.hostname,
        "output": alert.output,
    }


def _cut_torn_line(path: Path) -> None:
    """Drop a last line without its newline (a write interrupted by a crash)."""
    with open(path, "rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        block = min(size, 1 << 16)
        position = size
        while position > 0:
            start = max(0, position - block)
            handle.seek(start)
            chunk = handle.read(position - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                handle.truncate(start + newline + 1)
                break
            position = start
        else:
            handle.truncate(0)
        handle.flush()
        os.fsync(handle.fileno())


class AlertLog:
    """Appends alerts durably; safe to call from several threads."""

    def __init__(self, store_dir: str | Path) -> None:
        self.directory = Path(store_dir) / ALERTS_DIR
        self._lock = threading.Lock()
        self._fd = -1
        self._day = ""
        self.count = 0
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            existing = alert_files(store_dir)
            if existing:
                _cut_torn_line(existing[-1])
        except OSError as error:
            raise StoreError(f"cannot open the alert log: {error.strerror}", path=str(self.directory)) from None

    def _file(self, day: str) -> int:
        if day != self._day or self._fd < 0:
            self._close_file()
            path = self.directory / f"{FILE_PREFIX}{day}{FILE_SUFFIX}"
            created = not path.exists()
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
            self._day = day
            if created:
                dir_fd = os.open(self.directory, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        return self._fd

    def append(self, alerts: Sequence[Alert]) -> None:
        """Write and fsync; returns once the alerts are durable (raises StoreError otherwise)."""
        if not alerts:
            return
        data = b"".join(_encoder.encode(alert_record(alert)) + b"\n" for alert in alerts)
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        with self._lock:
            try:
                fd = self._file(day)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError as error:
                self._close_file()
                raise StoreError(f"cannot append alerts: {error.strerror}", path=str(self.directory)) from None
            self.count += len(alerts)

    def _close_file(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def close(self) -> None:
        with self._lock:
            self._close_file()


class _Key(msgspec.Struct):
    rule: str = ""
    cluster: str | None = None
    audit_id: str = ""


_key_decoder = msgspec.json.Decoder(_Key)


def recent_alert_keys(store_dir: str | Path, files: int = 2) -> set[tuple[str, str, str]]:
    """(rule, cluster, auditID) of the alerts in the newest `files` alert files (to avoid storing one twice)."""
    keys: set[tuple[str, str, str]] = set()
    for path in alert_files(store_dir)[-files:]:
        with open(path, "rb") as handle:
            for line in handle:
                try:
                    key = _key_decoder.decode(line)
                except msgspec.DecodeError:
                    continue
                keys.add((key.rule, key.cluster or "", key.audit_id))
    return keys


def alert_files(store_dir: str | Path) -> list[Path]:
    """The store's alert files, oldest first."""
    directory = Path(store_dir) / ALERTS_DIR
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"{FILE_PREFIX}*{FILE_SUFFIX}"))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def register_alerts_view(conn: duckdb.DuckDBPyConnection, store_dir: str | Path) -> None:
    """Create (or replace) the view `alerts` over the files present now (an empty view when there are none)."""
    files = [path for path in alert_files(store_dir) if path.stat().st_size > 0]
    names = ", ".join(COLUMNS)
    if not files:
        typed = ", ".join(f"NULL::{kind} AS {name}" for name, kind in COLUMNS.items())
        conn.execute(f"CREATE OR REPLACE VIEW alerts AS SELECT {typed} WHERE false")
        return
    listing = ", ".join(_literal(str(path)) for path in files)
    columns = ", ".join(f"{name}: {_literal(kind)}" for name, kind in COLUMNS.items())
    conn.execute(
        f"CREATE OR REPLACE VIEW alerts AS SELECT {names} FROM read_json([{listing}], "
        f"format = 'newline_delimited', ignore_errors = true, columns = {{{columns}}}) WHERE rule IS NOT NULL"
    )
