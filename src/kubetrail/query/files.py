"""Querying log files in place, without ingesting them: an `events` view with the store's columns.

Plain or gzip'd NDJSON audit logs (the log backend's format, rotated sets included) are read by DuckDB as
lines, and each column is extracted from the JSON only when a query uses it — the fast path. A line enters
the view only when it has an audit Event's required fields with the right types (as the intake requires);
when some do not, those files are read once more through the intake to report each refused line by
`file:line` and reason, as every command reports them. Other inputs (EventList or array documents, EKS /
GKE / AKS exports) go through the intake into an Arrow table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from kubetrail.intake import Format, Tally, expand_inputs, is_gzip, open_inflated, read_path
from kubetrail.model.event import SUPPORTED_EVENT_API_VERSIONS, Level, Stage
from kubetrail.query.inplace import is_plain_ndjson as is_plain_ndjson
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


def _in(values: Sequence[str]) -> str:
    return ", ".join(_literal(value) for value in values)


_REQUIRED = ["$.kind", "$.apiVersion", "$.level", "$.stage", "$.auditID", "$.requestURI", "$.verb", "$.user"]
_VALID_PARTS = (
    "(p[1] IS NULL OR json_extract_string(p[1], '$') = 'Event') "
    f"AND (p[2] IS NULL OR json_extract_string(p[2], '$') IN ({_in(SUPPORTED_EVENT_API_VERSIONS)})) "
    f"AND json_extract_string(p[3], '$') IN ({_in([level.value for level in Level])}) "
    f"AND json_extract_string(p[4], '$') IN ({_in([stage.value for stage in Stage])}) "
    "AND json_type(p[5]) = 'VARCHAR' AND json_type(p[6]) = 'VARCHAR' AND json_type(p[7]) = 'VARCHAR' "
    "AND json_type(p[8]) = 'OBJECT'"
)


def valid_event(column: str = "event") -> str:
    """SQL that is true for a line holding an audit Event: its required fields present with the right types."""
    paths = "[" + ", ".join(_literal(path) for path in _REQUIRED) + "]"
    return f"coalesce((SELECT {_VALID_PARTS} FROM (SELECT try(json_extract({column}, {paths})) AS p)), false)"


def _csv_lines(paths: Sequence[Path], compression: str, *, filename: bool = False) -> str:
    """DuckDB reading each line of the files as one VARCHAR `event` (no JSON line contains a raw 0x01)."""
    listing = ", ".join(_literal(str(path)) for path in paths)
    return (
        f"read_csv([{listing}], columns = {{'event': 'VARCHAR'}}, delim = '\\x01', quote = '', escape = '', "
        f"header = false, auto_detect = false, compression = '{compression}', max_line_size = {_MAX_LINE_BYTES}"
        f"{', filename = true' if filename else ''})"
    )


def _python_lines(paths: Sequence[Path]) -> pa.Table:
    """The files' lines as an `event` column, invalid UTF-8 replaced by U+FFFD (as the store keeps it)."""
    lines: list[str] = []
    for path in paths:
        with open_inflated(path) as stream:
            lines.extend(line.decode("utf-8", errors="replace") for line in stream)
    return pa.table({"event": pa.array(lines, pa.string())})


def lines_select(reader: str, cluster: str) -> str:
    """The `events` columns of the valid events among the lines of `reader` (a relation with an `event` column)."""
    columns = [f'{_LINE_COLUMNS[name]} AS "{name}"' for name in COLUMN_NAMES if name in _LINE_COLUMNS]
    return (
        f"SELECT {', '.join(columns)}, CAST(NULL AS DATE) AS date, {_literal(cluster)} AS cluster "
        f"FROM (SELECT event FROM {reader} WHERE {valid_event()})"
    )


def _decoded_rows(paths: Sequence[Path], cluster: str | None, input_format: str, tally: Tally) -> pa.Table:
    batches: list[pa.RecordBatch] = []
    received = datetime.now(UTC)
    for path in paths:
        for batch in read_path(path, input_format):
            tally.count(batch)
            if batch.events:
                rows = build_rows(cluster or batch.cluster or "default", batch.events, batch.raws, received=received)
                batches.append(rows.record_batch())
    return pa.Table.from_batches(batches, schema=ROW_SCHEMA)


@dataclass
class FileConnection:
    """A DuckDB connection whose `events` view reads files in place, and what reading them refused."""

    conn: duckdb.DuckDBPyConnection
    tally: Tally = field(default_factory=Tally)


def _refused_lines(conn: duckdb.DuckDBPyConnection, groups: dict[str, list[Path]], tally: Tally) -> None:
    """Count the events and the lines the fast path leaves out; files with some of those are read through the
    intake for the report (where, and why)."""
    failing: list[Path] = []
    for compression, group in groups.items():
        if not group:
            continue
        rows = conn.execute(
            f"SELECT filename, count(*) FILTER (WHERE valid), count(*) FILTER (WHERE NOT valid) "
            f"FROM (SELECT filename, {valid_event()} AS valid FROM {_csv_lines(group, compression, filename=True)}) "
            "GROUP BY filename"
        ).fetchall()
        for name, valid, refused in rows:
            tally.events += valid
            if refused:
                failing.append(Path(name))
    for path in failing:
        for batch in read_path(path, Format.NATIVE):
            for item in batch.rejected:
                tally.reject(item)
            tally.skipped.update(batch.skipped)


def connect_files(
    inputs: Sequence[str | Path],
    *,
    cluster: str | None = None,
    input_format: str = "auto",
    threads: int | None = None,
    python_lines: bool = False,
) -> FileConnection:
    """An in-memory DuckDB connection whose `events` view reads FILEs (files, directories, globs) in place.

    `cluster` labels the events (default: an export's own cluster, else `default`). Records that are not audit
    events are left out and counted, with their location, in the returned tally. `python_lines` reads NDJSON
    lines in Python instead of DuckDB's reader (slower; what a file with invalid UTF-8 needs: the invalid
    bytes become U+FFFD, as when ingesting).
    """
    paths = expand_inputs([str(item) for item in inputs])
    tally = Tally(files=len(paths))
    fast: dict[str, list[Path]] = {"gzip": [], "none": []}
    slow: list[Path] = []
    for path in paths:
        if input_format in ("auto", "k8s") and is_plain_ndjson(path):
            fast["gzip" if _gzip_on_disk(path) else "none"].append(path)
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
        parts = [f"SELECT {names} FROM ({lines_select(_LINES_RELATION, label)})"]
        for path in [*fast["gzip"], *fast["none"]]:
            for batch in read_path(path, Format.NATIVE):
                tally.count(batch)
    else:
        parts = [
            f"SELECT {names} FROM ({lines_select(_csv_lines(group, compression), label)})"
            for compression, group in fast.items()
            if group
        ]
        try:
            _refused_lines(conn, fast, tally)
        except duckdb.InvalidInputException as error:
            if "csv" not in str(error).lower():
                raise
            conn.close()
            return connect_files(inputs, cluster=cluster, input_format=input_format, threads=threads, python_lines=True)
    if slow:
        conn.register(_DECODED_RELATION, _decoded_rows(slow, cluster, input_format, tally))
        parts.append(f"SELECT {names} FROM ({flat_select(_DECODED_RELATION)})")
    if not parts:
        conn.register(_DECODED_RELATION, ROW_SCHEMA.empty_table())
        parts.append(f"SELECT {names} FROM ({flat_select(_DECODED_RELATION)})")
    conn.execute("CREATE VIEW events AS " + " UNION ALL ".join(parts))
    return FileConnection(conn, tally)


def _gzip_on_disk(path: Path) -> bool:
    """Whether the file's own bytes are gzip (DuckDB inflates them itself)."""
    with open(path, "rb") as handle:
        return is_gzip(handle.read(2))
