"""Where in time a list's first page lies, from the snapshot's pre-aggregations, before any event is read.

`facts_all` and `objects_all` count a filter's events per minute with their first and last time, exactly (see
`snapshot`). Walking those minutes from the newest (or the oldest) until they hold enough events for the page
gives a time range that holds the page's requests: a list reads the files and row groups of that range only
(Parquet statistics skip the rest), not every file's columns. A filter naming a column that neither
pre-aggregation has (a time range, a stage, a list column) gets no range; its own terms bound the read. Both
pre-aggregations hold every event (a NULL is a group like any value), so any filter over their columns is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb

TABLES = ("facts_all", "objects_all")


@dataclass(frozen=True)
class Range:
    """The first and last time of the matching events in the walked minutes; `whole` when those are all of them
    (the page's requests are then exactly those within the range), and `events` matching in the range."""

    first: datetime
    last: datetime
    whole: bool
    events: int


EMPTY = Range(datetime.min, datetime.min, True, 0)
"""Nothing matches (known without reading an event)."""


def binds(cursor: duckdb.DuckDBPyConnection, table: str, where: str) -> bool:
    """Whether `where` names only columns that `table` has."""
    try:
        cursor.execute(f"SELECT 1 FROM {table} WHERE {where} LIMIT 0", [None] * where.count("?"))
    except duckdb.Error:  # a column it lacks, mostly; anything else is answered from the events, exactly
        return False
    return True


def time_range(
    cursor: duckdb.DuckDBPyConnection, where: str, params: Sequence[object], events: int, *, descending: bool
) -> Range | None:
    """The range of the newest (or oldest) minutes holding at least `events` events matching `where`; EMPTY when
    none match, None when no pre-aggregation can answer `where`."""
    for table in TABLES:
        if not binds(cursor, table, where):
            continue
        direction = "DESC" if descending else "ASC"
        minutes = cursor.execute(
            f"SELECT sum(_n), min(_first), max(_last) FROM {table} WHERE {where} "
            f"GROUP BY _minute ORDER BY _minute {direction}",
            list(params),
        ).fetchall()
        if not minutes:
            return EMPTY
        total, walked = 0, 0
        for count, _, _ in minutes:
            total += int(count)
            walked += 1
            if total >= events:
                break
        chosen = minutes[:walked]
        first = min(row[1] for row in chosen)
        last = max(row[2] for row in chosen)
        return Range(first, last, walked == len(minutes), total)
    return None
