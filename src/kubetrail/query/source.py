"""Where a query reads events from: a store, or log files read in place; both expose the `events` view.

A `Source` runs filters with the window given by --since/--until/--cluster flags. Over raw log lines it
also adds a cheap substring test implied by the filter, so most lines are never parsed as JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from kubetrail.query.errors import QueryError
from kubetrail.query.fields import FieldKind
from kubetrail.query.filter import parse_filter
from kubetrail.query.nodes import And, Compare, Filter, Node
from kubetrail.query.run import ORDERS
from kubetrail.query.translate import to_sql
from kubetrail.query.window import Window as Window

if TYPE_CHECKING:
    from kubetrail.intake import Tally

# Values that JSON encoders (Go's included) always write verbatim, so the raw line must contain them.
_VERBATIM = re.compile(r"^[A-Za-z0-9._:@ +=-]+$")


def line_prefilter(filter: Filter) -> tuple[str, list[object]]:
    """Substring tests on the raw JSON implied by the filter's top-level `=` / `in` terms (or `true`).

    Only values JSON encoders write verbatim qualify; a line that fails the test cannot match the filter,
    so DuckDB parses only the lines that pass it.
    """
    root = filter.root
    items: tuple[Node, ...] = root.items if isinstance(root, And) else (root,) if root is not None else ()
    clauses: list[str] = []
    params: list[object] = []
    for item in items:
        if not isinstance(item, Compare) or item.negated or item.op not in ("=", "in"):
            continue
        if item.field.kind not in (FieldKind.TEXT, FieldKind.INT, FieldKind.LIST) or item.field.name == "cluster":
            continue
        texts = [value.text for value in item.values]
        if item.field.kind is FieldKind.INT and not all(text.isdigit() for text in texts):
            continue
        if not texts or not all(_VERBATIM.match(text) for text in texts):
            continue
        if item.field.kind is FieldKind.INT:
            # a JSON number follows a colon: `"code":403` (any spacing), never inside a longer number
            tests = ["(contains(event, ?) AND regexp_matches(event, ?))" for _ in texts]
            for text in texts:
                params.extend([text, rf":\s*{text}\s*[,}}\]]"])
        else:
            tests = ["contains(event, ?)" for _ in texts]
            # the value and its closing quote: a needle starting with `"` (in every JSON line a thousand times)
            # makes the substring search several times slower
            params.extend(f'{text}"' for text in texts)
        clauses.append("(" + " OR ".join(tests) + ")")
    return (" AND ".join(clauses) if clauses else "true"), params


@dataclass
class Source:
    """A DuckDB connection with an `events` view; `raw_lines` when events are read from log lines in place."""

    conn: duckdb.DuckDBPyConnection
    raw_lines: bool = False
    description: str = ""
    # The relation holding every event: `events`, or a cheaper one with the same rows (a store without a tail).
    relation: str = "events"
    # Builds a connection reading lines in Python, for files DuckDB refuses to read as text (invalid UTF-8).
    reopen: Callable[[], duckdb.DuckDBPyConnection] | None = None
    # What reading files in place refused or skipped (records that are not audit events), for the report.
    tally: Tally | None = None

    def where(
        self, text: str | Filter, window: Window | None = None, *, now: datetime | None = None
    ) -> tuple[str, list[object]]:
        """The WHERE clause for a filter within a window."""
        parsed = parse_filter(text) if isinstance(text, str) else text
        clauses: list[str] = []
        params: list[object] = []
        if self.raw_lines:
            clause, more = line_prefilter(parsed)
            clauses.append(clause)
            params.extend(more)
        clause, more = to_sql(parsed, now=now)
        clauses.append(clause)
        params.extend(more)
        for term in window.terms() if window else []:
            clause, more = to_sql(parse_filter(term), now=now)
            clauses.append(clause)
            params.extend(more)
        return " AND ".join(f"({item})" for item in clauses), params

    def select(
        self,
        text: str | Filter,
        window: Window | None = None,
        *,
        columns: Sequence[str] | None = None,
        limit: int = 0,
        order: str = "asc",
        now: datetime | None = None,
    ) -> pa.Table:
        """The matching events (`limit` 0: all), oldest first by default."""
        clause, params = self.where(text, window, now=now)
        selected = ", ".join(f'"{name}"' for name in columns) if columns else "*"
        sql = f"SELECT {selected} FROM {self.relation} WHERE {clause}"
        if ORDERS.get(order):
            sql += f" ORDER BY {ORDERS[order]}"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return self.sql(sql, params)

    def sql(self, sql: str, params: Sequence[object] = ()) -> pa.Table:
        """Run SQL over the `events` view; DuckDB's errors become QueryErrors."""
        try:
            try:
                return self.conn.sql(sql, params=list(params)).to_arrow_table()
            except duckdb.InvalidInputException as error:
                if self.reopen is None or "csv" not in str(error).lower():
                    raise
                self.conn.close()
                self.conn, self.reopen = self.reopen(), None
                return self.conn.sql(sql, params=list(params)).to_arrow_table()
        except duckdb.Error as error:
            message = str(error).splitlines()[0]
            raise QueryError(f"cannot run the query: {message}", hint="see `kubetrail query --help`") from error

    def over(self, table: pa.Table, sql: str, params: Sequence[object] = ()) -> pa.Table:
        """Run SQL over an Arrow table (already fetched rows) under the name `matched`."""
        cursor = self.conn.cursor()
        try:
            cursor.register("matched", table)
            return cursor.sql(sql, params=list(params)).to_arrow_table()
        except duckdb.Error as error:
            raise QueryError(f"cannot run the query: {str(error).splitlines()[0]}") from error
        finally:
            cursor.close()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_store(path: str | Path) -> Source:
    """A source over every acknowledged event of a store (opened read-only, so `serve` may keep running)."""
    from kubetrail.store import Store

    store = Store.open(path, read_only=True)
    try:
        conn = store.query_connection()
        sealed_only = store.tail_rows().num_rows == 0
    finally:
        store.close(seal=False)
    return Source(conn, raw_lines=False, description=str(path), relation="sealed" if sealed_only else "events")


def open_files(inputs: Sequence[str | Path], *, cluster: str | None = None, input_format: str = "auto") -> Source:
    """A source reading log files in place (see `kubetrail.query.files`)."""
    from kubetrail.query.files import connect_files

    connected = connect_files(inputs, cluster=cluster, input_format=input_format)
    return Source(
        connected.conn,
        raw_lines=True,
        description=", ".join(str(item) for item in inputs),
        reopen=lambda: connect_files(inputs, cluster=cluster, input_format=input_format, python_lines=True).conn,
        tally=connected.tally,
    )
