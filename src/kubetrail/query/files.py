"""Querying log files in place, without ingesting them: an `events` view with the store's columns.

Plain or gzip'd NDJSON audit logs (the log backend's format, rotated sets included) are read by DuckDB as
lines, and each column is extracted from the JSON only when a query uses it — the fast path. Other inputs
(EventList or array documents, EKS / GKE / AKS exports) go through kubetrail's readers into an Arrow table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from kubetrail.collect.readers import expand_inputs, read_file
from kubetrail.collect.readers.base import GZIP_MAGIC, head, open_input
from kubetrail.collect.readers.detect import format_of
from kubetrail.store.columns import COLUMN_NAMES, ROW_SCHEMA, build_rows, flat_select

_DECODED_RELATION = "kubetrail_decoded_rows"
_LINES_RELATION = "kubetrail_lines"
_MAX_LINE_BYTES = 64 * 1024 * 1024


def _x(path: str) -> str:
    return f"try(json_extract_string(event, '{path}'))"


def _s(path: str) -> str:
    return f"NULLIF({_x(path)}, '')"


def _list(path: str) -> str:
    return f"CASE WHEN try(json_array_length(event, '{path}')) > 0 THEN {_x(path + '[*]')} END"


def _time(path: str) -> str:
    return f"TRY_CAST({_x(path)} AS TIMESTAMPTZ)"


# Each column as the store derives it (columns.flat_select), one JSON path at a time.
_LINE_COLUMNS: dict[str, str] = {
    "time": f"COALESCE({_time('$.requestReceivedTimestamp')}, {_time('$.stageTimestamp')})",
    "stage_time": _time("$.stageTimestamp"),
    "stage": _x("$.stage"),
    "level": _x("$.level"),
    "verb": _s("$.verb"),
    "user": _s("$.user.username"),
    "groups": _list("$.user.groups"),
    "impersonated_user": _s("$.impersonatedUser.username"),
    "source_ip": _x("$.sourceIPs[0]"),
    "source_ips": _list("$.sourceIPs"),
    "user_agent": _s("$.userAgent"),
    "resource": _s("$.objectRef.resource"),
    "subresource": _s("$.objectRef.subresource"),
    "namespace": _s("$.objectRef.namespace"),
    "name": _s("$.objectRef.name"),
    "api_group": _s("$.objectRef.apiGroup"),
    "api_version": _s("$.objectRef.apiVersion"),
    "response_code": "NULLIF(TRY_CAST(try(json_extract(event, '$.responseStatus.code')) AS INTEGER), 0)",
    "authz_decision": _x('$.annotations."authorization.k8s.io/decision"'),
    "authz_reason": _x('$.annotations."authorization.k8s.io/reason"'),
    "request_uri": _s("$.requestURI"),
    "audit_id": _x("$.auditID"),
    "event": "event",
    "dedup_key": "CAST(NULL AS BIGINT)",
}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def is_plain_ndjson(path: Path) -> bool:
    """Whether a file is the log backend's NDJSON (one Event per line), gzip'd or not."""
    start = head(path, 65536).lstrip()
    if not start.startswith(b"{") or format_of(start) != "k8s":
        return False
    first_line = start.split(b"\n", 1)[0]
    return b'"auditID"' in first_line and b'"EventList"' not in first_line[:200]


def _csv_lines(paths: Sequence[Path], compression: str) -> str:
    """DuckDB reading each line of the files as one VARCHAR `event` (no JSON line contains a raw 0x01)."""
    listing = ", ".join(_literal(str(path)) for path in paths)
    return (
        f"read_csv([{listing}], columns = {{'event': 'VARCHAR'}}, delim = '\\x01', quote = '', escape = '', "
        f"header = false, auto_detect = false, compression = '{compression}', max_line_size = {_MAX_LINE_BYTES})"
    )


def _python_lines(paths: Sequence[Path]) -> pa.Table:
    """The files' lines as an `event` column, invalid UTF-8 replaced by U+FFFD (as the store keeps it)."""
    lines: list[str] = []
    for path in paths:
        with open_input(path) as source:
            lines.extend(line.decode("utf-8", errors="replace") for line in source.stream)
    return pa.table({"event": pa.array(lines, pa.string())})


def _lines_select(reader: str, cluster: str) -> str:
    columns = [f'{_LINE_COLUMNS[name]} AS "{name}"' for name in COLUMN_NAMES if name in _LINE_COLUMNS]
    return (
        f"SELECT {', '.join(columns)}, CAST(NULL AS DATE) AS date, {_literal(cluster)} AS cluster "
        f"FROM (SELECT event FROM {reader} WHERE try(json_type(event)) = 'OBJECT')"
    )


def _decoded_rows(paths: Sequence[Path], cluster: str | None, input_format: str) -> pa.Table:
    batches: list[pa.RecordBatch] = []
    received = datetime.now(UTC)
    for path in paths:
        for batch in read_file(path, input_format):
            if batch.events:
                rows = build_rows(cluster or batch.cluster or "default", batch.events, batch.raws, received=received)
                batches.append(rows.record_batch())
    return pa.Table.from_batches(batches, schema=ROW_SCHEMA)


def connect_files(
    inputs: Sequence[str | Path],
    *,
    cluster: str | None = None,
    input_format: str = "auto",
    threads: int | None = None,
    python_lines: bool = False,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection whose `events` view reads FILEs (files, directories, globs) in place.

    `cluster` labels the events (default: an export's own cluster, else `default`). Lines that are not JSON
    objects are left out. `python_lines` reads NDJSON lines in Python instead of DuckDB's reader (slower; what
    a file with invalid UTF-8 needs: the invalid bytes become U+FFFD, as when ingesting).
    """
    paths = expand_inputs([str(item) for item in inputs])
    fast: dict[str, list[Path]] = {"gzip": [], "none": []}
    slow: list[Path] = []
    for path in paths:
        if input_format in ("auto", "k8s") and is_plain_ndjson(path):
            with open(path, "rb") as handle:
                fast["gzip" if handle.read(2) == GZIP_MAGIC else "none"].append(path)
        else:
            slow.append(path)
    conn = duckdb.connect(":memory:")
    conn.execute("SET TimeZone = 'UTC'")
    if threads is not None:
        conn.execute(f"SET threads = {int(threads)}")
    names = ", ".join(f'"{name}"' for name in COLUMN_NAMES)
    label = cluster or "default"
    if python_lines:
        conn.register(_LINES_RELATION, _python_lines([*fast["gzip"], *fast["none"]]))
        parts = [f"SELECT {names} FROM ({_lines_select(_LINES_RELATION, label)})"]
    else:
        parts = [
            f"SELECT {names} FROM ({_lines_select(_csv_lines(group, compression), label)})"
            for compression, group in fast.items()
            if group
        ]
    if slow:
        conn.register(_DECODED_RELATION, _decoded_rows(slow, cluster, input_format))
        parts.append(f"SELECT {names} FROM ({flat_select(_DECODED_RELATION)})")
    if not parts:
        conn.register(_DECODED_RELATION, ROW_SCHEMA.empty_table())
        parts.append(f"SELECT {names} FROM ({flat_select(_DECODED_RELATION)})")
    conn.execute("CREATE VIEW events AS " + " UNION ALL ".join(parts))
    return conn
