"""What a search matched as a whole: the request count, requests over time, and the top values of each facet.

One scan answers all of it (DuckDB GROUPING SETS): of the snapshot's pre-aggregation `facts_all` when the filter
names only its columns (every count stays exact: they are sums of exact per-group counts), else of the matching
events. Requests are counted by the event that completes them (ResponseComplete or Panic; see
`requests.COMPLETED`), which is far cheaper than a distinct count of auditIDs; a request still in flight (no final
stage stored yet) is counted once it completes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import duckdb

from kubetrail.ui import charts
from kubetrail.ui.narrow import binds
from kubetrail.ui.requests import COMPLETED

FACETS: tuple[tuple[str, str, str], ...] = (
    ("user", '"user"', "user"),
    ("verb", "verb", "verb"),
    ("resource", "resource", "resource"),
    ("namespace", "namespace", "ns"),
    ("code", "response_code", "code"),
    ("user agent", "user_agent", "ua"),
    ("source IP", "source_ip", "ip"),
    ("cluster", "cluster", "cluster"),
)
"""(title, column, filter field) of each facet."""
TOP = 8
BUCKETS = 90


@dataclass(frozen=True)
class Facet:
    """A facet's title, the filter field a click adds, and its top values with request counts."""

    title: str
    field: str
    values: list[tuple[str, int]]
    distinct: int


@dataclass(frozen=True)
class SearchStats:
    """Matching requests in total, their first and last time, a histogram and the facets."""

    requests: int
    first: datetime | None
    last: datetime | None
    start: datetime | None = None
    step: timedelta = timedelta(minutes=1)
    histogram: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    facets: list[Facet] = field(default_factory=list)
    events: int = 0


def search_stats(cursor: duckdb.DuckDBPyConnection, where: str, params: Sequence[object]) -> SearchStats:
    """Count, histogram and facets of the requests with a stage matching `where` (a clause over `events`)."""
    sets = ", ".join(f"({column})" for _, column, _ in FACETS)
    grouping = ", ".join(column for _, column, _ in FACETS)
    picked = ", ".join(f"{column}::VARCHAR" for _, column, _ in FACETS)
    facts = binds(cursor, "facts_all", where)
    measures = (
        "sum(_requests), min(_first), max(_last), sum(_n) FROM facts_all"
        if facts
        else f"count(*) FILTER (WHERE {COMPLETED}), min(time), max(time), count(*) FROM events"
    )
    rows = cursor.execute(
        f"SELECT grouping({grouping}) AS g, coalesce({picked}), {measures} "
        f"WHERE {where} GROUP BY GROUPING SETS ({sets}, ())",
        list(params),
    ).fetchall()
    everything = (1 << len(FACETS)) - 1
    total = next((row for row in rows if row[0] == everything), None)
    if total is None or not total[5]:
        return SearchStats(0, None, None)
    first, last = total[3], total[4]
    facets = []
    for index, (title, _, name) in enumerate(FACETS):
        mask = everything & ~(1 << (len(FACETS) - 1 - index))
        values = [(str(row[1]), int(row[2])) for row in rows if row[0] == mask and row[1] is not None]
        values.sort(key=lambda item: (-item[1], item[0]))
        facets.append(Facet(title, name, values[:TOP], len(values)))
    start, step, counts, failed = histogram(cursor, where, params, first, last, facts=facts)
    return SearchStats(int(total[2]), first, last, start, step, counts, failed, facets, int(total[5]))


def histogram(
    cursor: duckdb.DuckDBPyConnection,
    where: str,
    params: Sequence[object],
    first: datetime,
    last: datetime,
    *,
    facts: bool = False,
) -> tuple[datetime, timedelta, list[int], list[int]]:
    """Requests (and failed ones, code ≥ 400) per round step between `first` and `last`; from `facts_all` (whose
    minutes fall whole into steps of whole minutes) when `facts` and the step allows."""
    step = charts.bucket_step(max(last - first, timedelta(seconds=1)), BUCKETS)
    seconds = int(step.total_seconds())
    origin = int(first.timestamp()) // seconds
    length = int(last.timestamp()) // seconds - origin + 1
    counts, failed = [0] * length, [0] * length
    if facts and seconds % 60 == 0:
        sql = (
            f"SELECT epoch(_minute)::BIGINT // {seconds} AS b, sum(_requests), "
            f"sum(_requests) FILTER (WHERE response_code >= 400) FROM facts_all WHERE {where} GROUP BY b"
        )
        values = list(params)
    else:
        sql = (
            f"SELECT epoch(time)::BIGINT // {seconds} AS b, count(*) FILTER (WHERE {COMPLETED}), "
            f"count(*) FILTER (WHERE {COMPLETED} AND response_code >= 400) FROM events "
            f"WHERE ({where}) AND time BETWEEN ? AND ? GROUP BY b"
        )
        values = [*params, first, last]
    for bucket, requests, bad in cursor.execute(sql, values).fetchall():
        position = int(bucket) - origin
        if 0 <= position < length:
            counts[position] += int(requests) - int(bad or 0)
            failed[position] += int(bad or 0)
    return datetime.fromtimestamp(origin * seconds, UTC), step, counts, failed
