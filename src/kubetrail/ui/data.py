"""The web UI's questions to the store, as SQL over the `events` (and `alerts`) views.

Every query reads only the flat Parquet columns it needs and ends in a LIMIT; newest-first lists take the top
rows of the sealed files and of the tail separately (so DuckDB reads the wide columns of those rows only) and
merge them. The full event JSON is read for one audit ID at a time. The overview reads the snapshot's
pre-aggregation, and is cached per snapshot generation.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import duckdb

from kubetrail.ui.search import filter_sql
from kubetrail.ui.snapshot import rows_of


class Source(Protocol):
    """Where the UI's SQL runs: `StoreSnapshot`, or anything with the same tables and views."""

    generation: int
    newest: datetime | None

    def cursor(self) -> duckdb.DuckDBPyConnection: ...


ROW_COLUMNS = (
    "time",
    "stage",
    "cluster",
    "user",
    "verb",
    "resource",
    "subresource",
    "namespace",
    "name",
    "response_code",
    "source_ip",
    "audit_id",
)
_SELECT = ", ".join(f'"{name}"' for name in ROW_COLUMNS)
WINDOWS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
PRIORITIES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")
# grouping(cluster, user, verb, resource): a bit is set for each column aggregated away.
_BY_CLUSTER, _BY_USER, _BY_VERB, _BY_RESOURCE, _ALL = 0b0111, 0b1011, 0b1101, 0b1110, 0b1111
RECENT_FIRST = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
NEAR = timedelta(minutes=1)
SESSION_GAP = timedelta(minutes=30)
"""A pause longer than this between one identity's requests starts a new session in its timeline."""


@dataclass(frozen=True)
class Row:
    """One event as a results table shows it (flat columns only)."""

    time: datetime
    stage: str | None
    cluster: str | None
    user: str | None
    verb: str | None
    resource: str | None
    subresource: str | None
    namespace: str | None
    name: str | None
    response_code: int | None
    source_ip: str | None
    audit_id: str | None
    new_session: bool = False


@dataclass(frozen=True)
class Page:
    """A page of rows and whether another one follows."""

    rows: list[Row]
    page: int
    size: int
    has_next: bool


@dataclass(frozen=True)
class Overview:
    """The overview page's numbers, for events within `window` of the newest event."""

    window: str
    total: int
    first: datetime | None
    last: datetime | None
    in_window: int
    events_per_second: float
    per_minute: list[tuple[datetime, int]]
    clusters: list[tuple[str, int]]
    users: list[tuple[str, int]]
    verbs: list[tuple[str, int]]
    resources: list[tuple[str, int]]
    forbidden: int
    alert_buckets: list[datetime] = field(default_factory=list)
    alert_series: dict[str, list[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertRow:
    """One alert as listed (and, with the event, as detailed)."""

    time: datetime
    rule: str
    priority: str
    cluster: str | None
    audit_id: str | None
    message: str
    output_fields: dict[str, Any]
    tags: list[str]
    mitre: list[str]


@dataclass(frozen=True)
class AlertPage:
    """A page of alerts, the filter's choices and whether the store has alerts at all."""

    alerts: list[AlertRow]
    page: int
    size: int
    has_next: bool
    rules: list[str]
    available: bool


def _rows(result: Sequence[tuple[Any, ...]]) -> list[Row]:
    return [Row(*values) for values in result]


def _sessions(rows: list[Row]) -> list[Row]:
    marked: list[Row] = []
    previous: datetime | None = None
    for row in rows:
        gap = previous is None or row.time - previous > SESSION_GAP
        marked.append(Row(**{**row.__dict__, "new_session": gap}))
        previous = row.time
    return marked


_ORDER_DESC = "time DESC, stage_time DESC, audit_id DESC"
_ORDER_ASC = "time ASC, stage_time ASC, audit_id ASC"


class UIData:
    """Answers the pages' questions over a `Source`."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self._cache: dict[str, tuple[int, Overview]] = {}
        self._lock = threading.Lock()

    def _newest(self) -> datetime | None:
        """The newest event's minute in a fresh snapshot."""
        self._source.cursor().close()
        return self._source.newest

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        cursor = self._source.cursor()
        try:
            return cursor.execute(sql, list(params)).fetchall()
        finally:
            cursor.close()

    def _top(
        self, where: str, params: Sequence[object], order: str, *, page: int, size: int, until: datetime | None = None
    ) -> Page:
        """Rows `page*size …` in `order` (time, then stage time): sealed and tail rows merged.

        For sealed rows only the sort keys and each row's file and row number are read first; the shown columns
        are then read for the page's rows alone. Newest first, the last hour of data is tried first (sealed files
        are in time order, so DuckDB skips the others); only when it holds too few rows is everything read."""
        depth = (page + 1) * size + 1
        newest = self._newest()
        descending = order == _ORDER_DESC
        attempts: list[tuple[str, list[object]]] = []
        if descending and newest is not None:
            attempts.append((f"({where}) AND time >= ?", [*params, newest - RECENT_FIRST]))
        if until is not None:
            where, params = f"({where}) AND time < ?", [*params, until]
        attempts.append((where, list(params)))
        direction = "DESC" if descending else "ASC"
        keys = f"time {direction}, coalesce(stage_time, time) {direction}"
        cursor = self._source.cursor()
        try:
            for clause, values in attempts:
                sealed = cursor.execute(
                    f"SELECT time, stage_time, filename, file_row_number FROM sealed_rows WHERE {clause} "
                    f"ORDER BY {keys}, filename {direction}, file_row_number {direction} LIMIT {depth}",
                    values,
                ).fetchall()
                tail = cursor.execute(
                    f"SELECT time, stage_time, '~tail', row_number() OVER () AS n, {_SELECT} FROM tail_flat "
                    f"WHERE {clause} ORDER BY {keys} LIMIT {depth}",
                    values,
                ).fetchall()
                merged = sorted(
                    [*sealed, *tail],
                    key=lambda item: (item[0], item[1] or item[0], item[2], item[3]),
                    reverse=descending,
                )
                if len(merged) > page * size + size:
                    break
            chosen = merged[page * size : page * size + size + 1]
            wanted: dict[str, list[int]] = {}
            for item in chosen:
                if item[2] != "~tail":
                    wanted.setdefault(item[2], []).append(item[3])
            fetched: dict[tuple[str, int], tuple[Any, ...]] = {}
            for file, numbers in wanted.items():
                for fetched_row in cursor.execute(rows_of(file, numbers, _SELECT)).fetchall():
                    fetched[(file, int(fetched_row[-1]))] = tuple(fetched_row[:-1])
        finally:
            cursor.close()
        rows = [item[4:] if item[2] == "~tail" else fetched[(item[2], item[3])] for item in chosen]
        return Page(_rows(rows[:size]), page, size, len(rows) > size)

    # ----- events ---------------------------------------------------------------------------------------

    def search(self, text: str, *, page: int, size: int) -> Page:
        """Events matching the filter text, newest first (raises SearchError for bad text)."""
        where, params = filter_sql(text)
        return self._top(where, params, _ORDER_DESC, page=page, size=size)

    def event(self, audit_id: str, near: datetime | None = None) -> list[tuple[Row, str]]:
        """Every stage of one request with its full JSON (pretty-printed), in stage order.

        Sealed rows are first located (file and row number, within a minute of `near` when given) and then read
        one by one, so only the pages holding them are decompressed."""
        clause, params = "audit_id = ?", list[object]([audit_id])
        if near is not None:
            clause, params = "audit_id = ? AND time BETWEEN ? AND ?", [audit_id, near - NEAR, near + NEAR]
        cursor = self._source.cursor()
        try:
            located = cursor.execute(
                f"SELECT filename, file_row_number FROM sealed_rows WHERE {clause} LIMIT 16", params
            ).fetchall()
            found = [
                row[:-1]
                for file, number in located
                for row in cursor.execute(rows_of(file, [number], f"{_SELECT}, stage_time, event")).fetchall()
            ]
            found += cursor.execute(
                f"SELECT {_SELECT}, stage_time, event FROM tail_flat WHERE audit_id = ? LIMIT 16", [audit_id]
            ).fetchall()
        finally:
            cursor.close()
        found.sort(key=lambda values: (values[-2] is None, values[-2] or values[0], values[0]))
        return [(Row(*values[:-2]), json.dumps(json.loads(values[-1]), indent=2)) for values in found]

    def recent_event_json(self, limit: int) -> list[str]:
        """The full JSON of the `limit` most recent events, oldest first (for the policy simulation page).

        Looked for in a growing window back from the newest event, so Parquet statistics skip old row groups.
        """
        rows: list[tuple[Any, ...]] = []
        for minutes in (5, 60, 24 * 60, None):
            window = (
                "" if minutes is None else f"WHERE time >= (SELECT max(time) FROM events) - INTERVAL {minutes} MINUTE"
            )
            rows = self._query(f"SELECT event, time FROM events {window} ORDER BY time DESC LIMIT ?", [limit])
            if len(rows) >= limit:
                break
        return [str(row[0]) for row in reversed(rows)]

    def identity(self, user: str, *, page: int, size: int) -> Page:
        """One identity's events, oldest first, with session starts marked."""
        depth = (page + 1) * size + 1
        covered = self._query(
            "SELECT minute FROM (SELECT minute, sum(sum(n)) OVER (ORDER BY minute) AS total FROM agg_all "
            'WHERE "user" = ? GROUP BY minute) WHERE total >= ? ORDER BY minute LIMIT 1',
            [user, depth],
        )
        until = covered[0][0] + MINUTE if covered else None
        found = self._top('"user" = ?', [user], _ORDER_ASC, page=page, size=size, until=until)
        return Page(_sessions(found.rows), page, size, found.has_next)

    def identity_summary(self, user: str) -> dict[str, Any]:
        """First and last seen, events, refusals and the verbs used (counts from the pre-aggregation)."""
        events, forbidden, first_minute, last_minute = self._query(
            'SELECT sum(n), sum(forbidden), min(minute), max(minute) FROM agg_all WHERE "user" = ?', [user]
        )[0]
        first = last = None
        if first_minute is not None:
            first, last = self._query(
                'SELECT (SELECT min(time) FROM events WHERE "user" = ? AND time >= ? AND time < ?), '
                '(SELECT max(time) FROM events WHERE "user" = ? AND time >= ? AND time < ?)',
                [user, first_minute, first_minute + MINUTE, user, last_minute, last_minute + MINUTE],
            )[0]
        verbs = self._query(
            'SELECT verb, sum(n) AS total FROM agg_all WHERE "user" = ? AND verb IS NOT NULL '
            "GROUP BY verb ORDER BY total DESC, verb LIMIT 12",
            [user],
        )
        return {"first": first, "last": last, "events": events or 0, "forbidden": forbidden or 0, "verbs": verbs}

    def object_history(self, resource: str, namespace: str, name: str, *, page: int, size: int) -> Page:
        """Every event on one object (an empty namespace means a cluster-scoped object), oldest first."""
        namespace_clause = "namespace IS NULL" if not namespace else "namespace = ?"
        params: list[object] = [resource, name, *([namespace] if namespace else [])]
        return self._top(f"resource = ? AND name = ? AND {namespace_clause}", params, _ORDER_ASC, page=page, size=size)

    def recent_objects(self, limit: int = 25) -> list[tuple[str, str | None, str, datetime, str | None]]:
        """Objects created, changed or deleted in the last hour of data, latest first (leases and events, which
        controllers rewrite every few seconds, left out): (resource, namespace, name, time, verb)."""
        newest = self._newest()
        if newest is None:
            return []
        rows = self._query(
            "SELECT resource, namespace, name, max(time) AS last, arg_max(verb, time) FROM events "
            "WHERE time >= ? AND verb IN ('create', 'update', 'patch', 'delete') AND name IS NOT NULL "
            "AND subresource IS NULL AND resource NOT IN ('leases', 'events') "
            f"GROUP BY resource, namespace, name ORDER BY last DESC LIMIT {int(limit)}",
            [newest - RECENT_FIRST],
        )
        return [(str(row[0]), row[1], str(row[2]), row[3], row[4]) for row in rows]

    # ----- overview -------------------------------------------------------------------------------------

    def overview(self, window: str) -> Overview:
        """The overview for `window` (a key of WINDOWS or `all`), computed once per snapshot generation."""
        cursor = self._source.cursor()
        generation = self._source.generation
        try:
            with self._lock:
                cached = self._cache.get(window)
            if cached is not None and cached[0] == generation:
                return cached[1]
            result = self._compute_overview(cursor, window)
        finally:
            cursor.close()
        with self._lock:
            self._cache[window] = (generation, result)
        return result

    def _compute_overview(self, cursor: duckdb.DuckDBPyConnection, window: str) -> Overview:
        first, last, total = cursor.execute("SELECT min(minute), max(minute), sum(n) FROM agg_all").fetchone() or (
            None,
            None,
            0,
        )
        if last is None:
            return Overview(window, 0, None, None, 0, 0.0, [], [], [], [], [], 0)
        exact = cursor.execute("SELECT first, last FROM bounds").fetchone()
        if exact is not None and exact[0] is not None:
            first, last = exact
        since = first if window not in WINDOWS else max(first, last - WINDOWS[window])
        groups = cursor.execute(
            'SELECT grouping(cluster, "user", verb, resource) AS g, coalesce(cluster, "user", verb, resource), '
            "sum(n), sum(forbidden) FROM agg_all WHERE minute >= time_bucket(INTERVAL 1 MINUTE, ?::TIMESTAMPTZ) "
            'GROUP BY GROUPING SETS ((cluster), ("user"), (verb), (resource), ())',
            [since],
        ).fetchall()
        in_window, forbidden = next(((row[2], row[3]) for row in groups if row[0] == _ALL), (0, 0))

        def top(grouping: int, limit: int = 10) -> list[tuple[str, int]]:
            counts = [(str(row[1]), int(row[2])) for row in groups if row[0] == grouping and row[1] is not None]
            return sorted(counts, key=lambda item: (-item[1], item[0]))[:limit]

        hour_ago = last - timedelta(hours=1)
        counted = dict(
            cursor.execute(
                "SELECT minute, sum(n) FROM agg_all WHERE minute >= time_bucket(INTERVAL 1 MINUTE, ?::TIMESTAMPTZ) "
                "GROUP BY minute",
                [hour_ago],
            ).fetchall()
        )
        start = last.replace(second=0, microsecond=0) - timedelta(hours=1)
        per_minute = [(start + MINUTE * index, int(counted.get(start + MINUTE * index, 0))) for index in range(61)]
        last_minute = per_minute[-2][1] if len(per_minute) >= 2 else (per_minute[-1][1] if per_minute else 0)
        buckets, series = self._alert_series(cursor, since, last)
        return Overview(
            window,
            int(total or 0),
            first,
            last,
            int(in_window or 0),
            last_minute / 60.0,
            per_minute,
            top(_BY_CLUSTER, 20),
            top(_BY_USER),
            top(_BY_VERB),
            top(_BY_RESOURCE),
            int(forbidden or 0),
            buckets,
            series,
        )

    # ----- alerts ---------------------------------------------------------------------------------------

    def _alert_series(
        self, cursor: duckdb.DuckDBPyConnection, since: datetime, last: datetime
    ) -> tuple[list[datetime], dict[str, list[int]]]:
        span = max((last - since).total_seconds(), 60.0)
        step = max(60, int(span / 48) // 60 * 60)
        rows = cursor.execute(
            f"SELECT (epoch(time) // {step})::BIGINT AS b, priority, count(*) FROM alerts_t "
            "WHERE time >= ?::TIMESTAMPTZ::TIMESTAMP GROUP BY b, priority",
            [since],
        ).fetchall()
        first_bucket, last_bucket = int(since.timestamp()) // step, int(last.timestamp()) // step
        buckets = [datetime.fromtimestamp(number * step, UTC) for number in range(first_bucket, last_bucket + 1)]
        series: dict[str, list[int]] = {}
        if not rows:
            return [], {}
        for bucket, priority, count in rows:
            position = min(max(int(bucket) - first_bucket, 0), len(buckets) - 1)
            series.setdefault(str(priority), [0] * len(buckets))[position] += int(count)
        return buckets, series

    def alerts(self, *, priority: str, rule: str, page: int, size: int) -> AlertPage:
        """Alerts, newest first, optionally of one priority (or more severe with `priority+`) and one rule."""
        clauses: list[str] = ["true"]
        params: list[object] = []
        if priority.endswith("+") and priority[:-1] in PRIORITIES:
            clauses.append("priority_rank <= ?")
            params.append(PRIORITIES.index(priority[:-1]))
        elif priority:
            clauses.append("priority = ?")
            params.append(priority)
        if rule:
            clauses.append("rule = ?")
            params.append(rule)
        cursor = self._source.cursor()
        try:
            total = cursor.execute("SELECT count(*) FROM alerts_t").fetchone()
            rows = cursor.execute(
                f"SELECT {_ALERT_COLUMNS} FROM alerts_t WHERE {' AND '.join(clauses)} "
                "ORDER BY time DESC, rule LIMIT ? OFFSET ?",
                [*params, size + 1, page * size],
            ).fetchall()
            rules = [
                row[0] for row in cursor.execute("SELECT DISTINCT rule FROM alerts_t ORDER BY 1 LIMIT 500").fetchall()
            ]
        finally:
            cursor.close()
        alerts = [_alert(values) for values in rows[:size]]
        return AlertPage(alerts, page, size, len(rows) > size, rules, bool(total and total[0]))

    def alert(self, audit_id: str, rule: str) -> AlertRow | None:
        """The alert of `rule` on the event `audit_id`, or None."""
        rows = self._query(
            f"SELECT {_ALERT_COLUMNS} FROM alerts_t WHERE audit_id = ? AND rule = ? ORDER BY time LIMIT 1",
            [audit_id, rule],
        )
        return _alert(rows[0]) if rows else None


_ALERT_COLUMNS = "time, rule, priority, cluster, audit_id, message, output_fields, tags, mitre"


def _alert(values: tuple[Any, ...]) -> AlertRow:
    time_, rule, priority, cluster, audit_id, message, output_fields, tags, mitre = values
    fields = json.loads(output_fields) if isinstance(output_fields, str) else (output_fields or {})
    return AlertRow(time_, rule, priority, cluster, audit_id, message, fields, list(tags or []), list(mitre or []))
