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
from kubetrail.collect.readers.base import GZIP_MAGIC, head
from kubetrail.collect.readers.detect import format_of
from kubetrail.store.columns import COLUMN_NAMES, ROW_SCHEMA, build_rows, flat_select

_DECODED_RELATION = "kubetrail_decoded_rows"
_MAX_LINE_BYTES = 64 * 1024 * 1024


def _s(path: str) -> str:
    return f"NULLIF(json_extract_string(event, '{path}'), '')"


def _list(path: str) -> str:
    return f"CASE WHEN json_array_length(event, '{path}') > 0 THEN json_extract_string(event, '{path}[*]') END"


def _time(path: str) -> str:
    return f"TRY_CAST(json_extract_string(event, '{path}') AS TIMESTAMPTZ)"


# Each column as the store derives it (columns.flat_select), one JSON path at a time.
_LINE_COLUMNS: dict[str, str] = {
    "time": f"COALESCE({_time('$.requestReceivedTimestamp')}, {_time('$.stageTimestamp')})",
    "stage_time": _time("$.stageTimestamp"),
    "stage": "json_extract_string(event, '$.stage')",
    "level": "json_extract_string(event, '$.level')",
    "verb": _s("$.verb"),
    "user": _s("$.user.username"),
    "groups": _list("$.user.groups"),
    "impersonated_user": _s("$.impersonatedUser.username"),
    "source_ip": "json_extract_string(event, '$.sourceIPs[0]')",
    "source_ips": _list("$.sourceIPs"),
    "user_agent": _s("$.userAgent"),
    "resource": _s("$.objectRef.resource"),
    "subresource": _s("$.objectRef.subresource"),
    "namespace": _s("$.objectRef.namespace"),
    "name": _s("$.objectRef.name"),
    "api_group": _s("$.objectRef.apiGroup"),
    "api_version": _s("$.objectRef.apiVersion"),
    "response_code": "NULLIF(TRY_CAST(json_extract(event, '$.responseStatus.code') AS INTEGER), 0)",
    "authz_decision": "json_extract_string(event, '$.annotations.\"authorization.k8s.io/decision\"')",
    "authz_reason": "json_extract_string(event, '$.annotations.\"authorization.k8s.io/reason\"')",
    "request_uri": _s("$.requestURI"),
    "audit_id": "json_extract_string(event, '$.auditID')",
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


def _lines_select(paths: Sequence[Path], compression: str, cluster: str) -> str:
    listing = ", ".join(_literal(str(path)) for path in paths)
    reader = (
        f"read_csv([{listing}], columns = {{'event': 'VARCHAR'}}, delim = '\\x01', quote = '', escape = '', "
        f"header = false, auto_detect = false, compression = '{compression}', max_line_size = {_MAX_LINE_BYTES})"
    )
    columns = [f'{_LINE_COLUMNS[name]} AS "{name}"' for name in COLUMN_NAMES if name in _LINE_COLUMNS]
    return (
        f"SELECT {', '.join(columns)}, CAST(NULL AS DATE) AS date, {_literal(cluster)} AS cluster "
        f"FROM (SELECT event FROM {reader} WHERE event IS NOT NULL AND trim(event) <> '')"
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
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection whose `events` view reads FILEs (files, directories, globs) in place.

    `cluster` labels the events (default: an export's own cluster, else `default`).
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
    parts = [
        f"SELECT {names} FROM ({_lines_select(group, compression, cluster or 'default')})"
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
