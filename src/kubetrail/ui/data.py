"""The web UI's questions to the store, as SQL over the `events` (and `alerts`) views.

Every query reads only the flat Parquet columns it needs and ends in a LIMIT; newest-first lists take the top
rows of the sealed files and of the tail separately (so DuckDB reads the wide columns of those rows only) and
merge them. The full event JSON is read for one audit ID at a time. The overview reads the snapshot's
pre-aggregation, and is cached per snapshot generation.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import duckdb

from kubetrail.ui import charts
from kubetrail.ui.facets import SearchStats, search_stats
from kubetrail.ui.narrow import EMPTY, time_range
from kubetrail.ui.profile import Profile, profile
from kubetrail.ui.requests import STAGE_ORDER, STAGE_SELECT, RequestPage, RequestRow, merge, pick, stages_of
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
STATS_CACHED = 64
"""Searches (and identities) whose statistics are kept (oldest dropped first)."""
_Kept = TypeVar("_Kept")
"""What a per-generation cache keeps (search statistics, profiles)."""
AROUND = timedelta(minutes=15)
"""How far "around this alert" reaches on each side."""
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
class Span:
    """The time range a page shows, and why: the window asked for, or the data's own range when the window
    (counted back from now) holds nothing (`note` then says so)."""

    since: datetime
    until: datetime
    note: str = ""

    @property
    def own_range(self) -> bool:
        return bool(self.note)


def span_for(window: str, first: datetime, last: datetime, now: datetime) -> Span:
    """The range of `window` (a key of WINDOWS, or `all`) back from `now`, or the data's range when that window
    holds no data (a backfilled or generated log, or a store nothing wrote to lately)."""
    if window not in WINDOWS:
        return Span(first, last)
    since = now - WINDOWS[window]
    if last < since or first > now:
        note = (
            f"showing the data's own range: {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC; "
            f"nothing in the last {window}"
        )
        return Span(first, last, note)
    return Span(since, now)


@dataclass(frozen=True)
class Overview:
    """The overview page's numbers, for events within the shown range (`span`)."""

    window: str
    total: int
    first: datetime | None
    last: datetime | None
    in_window: int
    events_per_second: float
    clusters: list[tuple[str, int]]
    users: list[tuple[str, int]]
    verbs: list[tuple[str, int]]
    resources: list[tuple[str, int]]
    forbidden: int
    span: Span | None = None
    step: timedelta = MINUTE
    chart_start: datetime | None = None
    events: dict[str, list[int]] = field(default_factory=dict)
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


def time_bucket_floor(moment: datetime) -> datetime:
    """The start of `moment`'s minute (the pre-aggregation's granularity)."""
    return moment.replace(second=0, microsecond=0)


def _sessions(rows: list[RequestRow]) -> list[RequestRow]:
    marked: list[RequestRow] = []
    previous: datetime | None = None
    for row in rows:
        gap = previous is None or row.time - previous > SESSION_GAP
        marked.append(replace(row, new_session=gap))
        previous = row.last
    return marked


class UIData:
    """Answers the pages' questions over a `Source`."""

    def __init__(self, source: Source, clock: Callable[[], datetime] | None = None) -> None:
        self._source = source
        self._clock = clock or (lambda: datetime.now(UTC))
        self._cache: dict[str, tuple[tuple[int, datetime], Overview]] = {}
        self._stats: dict[tuple[int, str], SearchStats] = {}
        self._profiles: dict[tuple[int, str], Profile] = {}
        self._lock = threading.Lock()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection over the current snapshot (close it after use), for questions asked elsewhere."""
        return self._source.cursor()

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

    def requests(
        self,
        where: str,
        params: Sequence[object],
        *,
        descending: bool,
        page: int,
        size: int,
        until: datetime | None = None,
    ) -> RequestPage:
        """Requests `page*size …` with a stage matching `where`, by time (one row per auditID, stages merged).

        The snapshot's pre-aggregations tell which minutes hold the page (`narrow.time_range`), so only the files
        and row groups of those minutes are read. A filter they cannot answer is tried, newest first, on the last
        hour of data first (sealed files are in time order, so DuckDB skips the others); only when that holds too
        few requests is everything read. `until` bounds an oldest-first read."""
        depth = (page + 1) * size + 1
        if until is not None:
            where, params = f"({where}) AND time < ?", [*params, until]
        cursor = self._source.cursor()
        try:
            attempts: list[tuple[str, list[object]]] = []
            found = time_range(cursor, where, params, depth * len(STAGE_ORDER), descending=descending)
            if found is EMPTY:
                return RequestPage([], page, size, False)
            if found is not None:
                attempts.append((f"({where}) AND time BETWEEN ? AND ?", [*params, found.first, found.last]))
            elif descending:
                newest = self._source.newest
                if newest is not None:
                    attempts.append((f"({where}) AND time >= ?", [*params, newest - RECENT_FIRST]))
            if found is None or not found.whole:
                attempts.append((where, list(params)))
            keys: list[tuple[datetime, str | None]] = []
            for clause, values in attempts:
                keys = pick(cursor, clause, values, descending=descending, limit=depth)
                if len(keys) >= depth:
                    break
            chosen = keys[page * size : page * size + size + 1]
            rows = stages_of(cursor, chosen[:size])
        finally:
            cursor.close()
        return RequestPage(rows, page, size, len(chosen) > size)

    # ----- events ---------------------------------------------------------------------------------------

    def search(self, text: str, *, page: int, size: int) -> RequestPage:
        """Requests with a stage matching the filter text, newest first (raises SearchError for bad text)."""
        where, params = filter_sql(text)
        return self.requests(where, params, descending=True, page=page, size=size)

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

    def request(self, audit_id: str, near: datetime | None = None) -> RequestRow | None:
        """One request's stages merged (looked for near `near` first, then anywhere)."""
        cursor = self._source.cursor()
        try:
            attempts: list[tuple[str, list[object]]] = [("audit_id = ?", [audit_id])]
            if near is not None:
                attempts.insert(0, ("audit_id = ? AND time BETWEEN ? AND ?", [audit_id, near - NEAR, near + NEAR]))
            for clause, params in attempts:
                found = cursor.execute(f"SELECT {STAGE_SELECT} FROM events WHERE {clause} LIMIT 16", params).fetchall()
                if found:
                    return merge(found)[0]
        finally:
            cursor.close()
        return None

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

    def identity(self, user: str, *, page: int, size: int) -> RequestPage:
        """One identity's requests, oldest first, with session starts marked (read from the minutes that the
        pre-aggregation says hold the page, see `requests`)."""
        found = self.requests('"user" = ?', [user], descending=False, page=page, size=size)
        return RequestPage(_sessions(found.rows), page, size, found.has_next)

    def identity_summary(self, user: str) -> dict[str, Any]:
        """First and last seen, events, refusals and the verbs used (all from the pre-aggregations)."""
        events, forbidden, first, last = self._query(
            "SELECT sum(_n), sum(_n) FILTER (WHERE response_code = 403), min(_first), max(_last) FROM facts_all "
            'WHERE "user" = ?',
            [user],
        )[0]
        verbs = self._query(
            'SELECT verb, sum(n) AS total FROM agg_all WHERE "user" = ? AND verb IS NOT NULL '
            "GROUP BY verb ORDER BY total DESC, verb LIMIT 12",
            [user],
        )
        return {"first": first, "last": last, "events": events or 0, "forbidden": forbidden or 0, "verbs": verbs}

    def object_history(self, resource: str, namespace: str, name: str, *, page: int, size: int) -> RequestPage:
        """Every request on one object (an empty namespace means a cluster-scoped object), oldest first."""
        namespace_clause = "namespace IS NULL" if not namespace else "namespace = ?"
        params: list[object] = [resource, name, *([namespace] if namespace else [])]
        return self.requests(
            f"resource = ? AND name = ? AND {namespace_clause}", params, descending=False, page=page, size=size
        )

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
        """The overview for `window` (a key of WINDOWS or `all`), computed once per snapshot generation and minute."""
        cursor = self._source.cursor()
        generation = self._source.generation
        now = self._clock().replace(second=0, microsecond=0)
        try:
            with self._lock:
                cached = self._cache.get(window)
            if cached is not None and cached[0] == (generation, now):
                return cached[1]
            result = self._compute_overview(cursor, window, now)
        finally:
            cursor.close()
        with self._lock:
            self._cache[window] = ((generation, now), result)
        return result

    def data_span(self, window: str = "24h") -> Span | None:
        """The range pages default to: `window` back from now, or the data's own range when that is empty."""
        bounds = self._query("SELECT first, last FROM bounds")
        if not bounds or bounds[0][0] is None:
            return None
        return span_for(window, bounds[0][0], bounds[0][1], self._clock())

    def _compute_overview(self, cursor: duckdb.DuckDBPyConnection, window: str, now: datetime) -> Overview:
        total, newest_minute = cursor.execute("SELECT sum(n), max(minute) FROM agg_all").fetchone() or (0, None)
        bounds = cursor.execute("SELECT first, last FROM bounds").fetchone()
        if newest_minute is None or bounds is None or bounds[0] is None:
            return Overview(window, 0, None, None, 0, 0.0, [], [], [], [], 0)
        first, last = bounds
        span = span_for(window, first, last, now)
        low = time_bucket_floor(span.since)
        groups = cursor.execute(
            'SELECT grouping(cluster, "user", verb, resource) AS g, coalesce(cluster, "user", verb, resource), '
            "sum(n), sum(forbidden) FROM agg_all WHERE minute >= ? AND minute <= ? "
            'GROUP BY GROUPING SETS ((cluster), ("user"), (verb), (resource), ())',
            [low, span.until],
        ).fetchall()
        in_window, forbidden = next(((row[2], row[3]) for row in groups if row[0] == _ALL), (0, 0))

        def top(grouping: int, limit: int = 10) -> list[tuple[str, int]]:
            counts = [(str(row[1]), int(row[2])) for row in groups if row[0] == grouping and row[1] is not None]
            return sorted(counts, key=lambda item: (-item[1], item[0]))[:limit]

        step = charts.bucket_step(span.until - span.since, 120, minimum=MINUTE)
        seconds = int(step.total_seconds())
        start = datetime.fromtimestamp(int(span.since.timestamp()) // seconds * seconds, UTC)
        length = int((span.until - start) / step) + 1
        events = {"allowed or failed": [0] * length, "forbidden (403)": [0] * length}
        for bucket, count, refused in cursor.execute(
            f"SELECT (epoch(minute)::BIGINT // {seconds}) AS b, sum(n), sum(forbidden) FROM agg_all "
            "WHERE minute >= ? AND minute <= ? GROUP BY b",
            [low, span.until],
        ).fetchall():
            position = int(bucket) - int(start.timestamp()) // seconds
            if 0 <= position < length:
                events["allowed or failed"][position] += int(count) - int(refused)
                events["forbidden (403)"][position] += int(refused)
        last_minute = cursor.execute("SELECT sum(n) FROM agg_all WHERE minute = ?", [newest_minute - MINUTE]).fetchone()
        alert_series = self._alert_series(cursor, start, step, length)
        return Overview(
            window,
            int(total or 0),
            first,
            last,
            int(in_window or 0),
            int((last_minute or (0,))[0] or 0) / 60.0,
            top(_BY_CLUSTER, 20),
            top(_BY_USER),
            top(_BY_VERB),
            top(_BY_RESOURCE),
            int(forbidden or 0),
            span,
            step,
            start,
            events,
            alert_series,
        )

    # ----- alerts ---------------------------------------------------------------------------------------

    def _alert_series(
        self, cursor: duckdb.DuckDBPyConnection, start: datetime, step: timedelta, length: int
    ) -> dict[str, list[int]]:
        seconds = int(step.total_seconds())
        rows = cursor.execute(
            f"SELECT (epoch(time)::BIGINT // {seconds}) AS b, priority, count(*) FROM alerts_t "
            "WHERE time >= ?::TIMESTAMPTZ::TIMESTAMP AND time < ?::TIMESTAMPTZ::TIMESTAMP GROUP BY b, priority",
            [start, start + step * length],
        ).fetchall()
        series: dict[str, list[int]] = {}
        for bucket, priority, count in rows:
            position = int(bucket) - int(start.timestamp()) // seconds
            if 0 <= position < length:
                series.setdefault(str(priority), [0] * length)[position] += int(count)
        return series

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

    def alerts_for_user(self, user: str, limit: int = 100) -> list[AlertRow]:
        """Alerts whose output names `user` as the requesting or the impersonated identity, newest first."""
        rows = self._query(
            f"SELECT {_ALERT_COLUMNS} FROM alerts_t WHERE json_extract_string(output_fields, '$.\"ka.user.name\"') = ? "
            "OR json_extract_string(output_fields, '$.\"ka.impuser.name\"') = ? ORDER BY time DESC, rule LIMIT ?",
            [user, user, limit],
        )
        return [_alert(values) for values in rows]

    # ----- investigation ----------------------------------------------------------------------------------

    def search_stats(self, text: str) -> SearchStats:
        """Request count, histogram and facets of a search (raises SearchError for bad text), computed once per
        snapshot generation: paging through a search's results reuses them."""
        where, params = filter_sql(text)
        return self._per_generation(self._stats, text, lambda cursor: search_stats(cursor, where, params))

    def profile(self, user: str) -> Profile:
        """The identity page's activity, impersonation, tokens, addresses and clients (kept per snapshot
        generation, like a search's statistics)."""
        return self._per_generation(self._profiles, user, lambda cursor: profile(cursor, user))

    def _per_generation(
        self, cache: dict[tuple[int, str], _Kept], text: str, compute: Callable[[duckdb.DuckDBPyConnection], _Kept]
    ) -> _Kept:
        """`compute` over a cursor, kept per snapshot generation and `text` (the STATS_CACHED most recent)."""
        key = (self._source.generation, text)
        with self._lock:
            cached = cache.get(key)
        if cached is not None:
            return cached
        cursor = self._source.cursor()
        try:
            found = compute(cursor)
        finally:
            cursor.close()
        with self._lock:
            cache[key] = found
            while len(cache) > STATS_CACHED:
                del cache[next(iter(cache))]
        return found

    def clear_caches(self) -> None:
        """Forget every computed overview, search statistics and profile (what a new snapshot does)."""
        with self._lock:
            self._cache.clear()
            self._stats.clear()
            self._profiles.clear()

    def around(self, user: str, moment: datetime, reach: timedelta = AROUND, limit: int = 200) -> RequestPage:
        """`user`'s requests within `reach` of `moment`, oldest first."""
        return self.requests(
            '"user" = ? AND time BETWEEN ? AND ?',
            [user, moment - reach, moment + reach],
            descending=False,
            page=0,
            size=limit,
        )


_ALERT_COLUMNS = "time, rule, priority, cluster, audit_id, message, output_fields, tags, mitre"


def _alert(values: tuple[Any, ...]) -> AlertRow:
    time_, rule, priority, cluster, audit_id, message, output_fields, tags, mitre = values
    fields = json.loads(output_fields) if isinstance(output_fields, str) else (output_fields or {})
    return AlertRow(time_, rule, priority, cluster, audit_id, message, fields, list(tags or []), list(mitre or []))
