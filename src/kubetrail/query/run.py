"""Running a filter against a DuckDB connection that has an `events` view (a store's, or files')."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb
import pyarrow as pa

from kubetrail.query.errors import QueryError
from kubetrail.query.filter import parse_filter
from kubetrail.query.nodes import Filter
from kubetrail.query.translate import to_sql

ORDERS = {
    "asc": '"time" ASC, stage_time ASC, audit_id ASC',
    "desc": '"time" DESC, stage_time DESC, audit_id DESC',
    "none": "",
}


def where(
    filter: Filter | str, *, extra: Sequence[tuple[str, list[object]]] = (), now: datetime | None = None
) -> tuple[str, list[object]]:
    """The WHERE clause of a filter ANDed with extra clauses (e.g. from --since/--cluster flags)."""
    parsed = parse_filter(filter) if isinstance(filter, str) else filter
    clause, params = to_sql(parsed, now=now)
    clauses = [clause]
    for more, more_params in extra:
        clauses.append(more)
        params = [*params, *more_params]
    return " AND ".join(f"({item})" for item in clauses), params


def run_query(
    conn: duckdb.DuckDBPyConnection,
    text: str,
    *,
    limit: int = 100,
    order: str = "desc",
    offset: int = 0,
    columns: Sequence[str] | None = None,
    now: datetime | None = None,
) -> pa.Table:
    """The events matching filter `text`, newest first by default; `limit` 0 means all."""
    if order not in ORDERS:
        raise QueryError(f"unknown order {order!r}", hint=f"one of {', '.join(ORDERS)}")
    clause, params = where(text, now=now)
    selected = ", ".join(f'"{name}"' for name in columns) if columns else "*"
    sql = f"SELECT {selected} FROM events WHERE {clause}"
    if ORDERS[order]:
        sql += f" ORDER BY {ORDERS[order]}"
    if limit:
        sql += f" LIMIT {int(limit)}"
    if offset:
        sql += f" OFFSET {int(offset)}"
    try:
        return conn.sql(sql, params=params).to_arrow_table()
    except duckdb.BinderException as error:
        raise QueryError(f"cannot run the query: {error}", hint="check --fields names") from error
