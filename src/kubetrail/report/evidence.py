"""The evidence a compliance report rests on: SQL over a store's `events` view for one period, plus `verify`.

Counts are of requests (distinct auditIDs), so the several stages the apiserver writes per request count once.
Each section keeps the `kubetrail query` filter that reproduces it, so an assessor can re-run the question.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

from kubetrail.check import Finding as CheckFinding
from kubetrail.investigate.common import EXEC_SUBRESOURCES, RBAC_GROUP, SECRET_READ_VERBS, WRITE_VERBS
from kubetrail.query import parse_filter, to_sql
from kubetrail.store import VerifyReport

# At most this many individual requests are listed per section (the counts always cover all of them).
MAX_ITEMS = 500

_REQUEST = "coalesce(audit_id, CAST(dedup_key AS VARCHAR))"


SECRET_FILTER = f"resource=secrets verb in ({','.join(SECRET_READ_VERBS)})"
RBAC_FILTER = f"apigroup={RBAC_GROUP} verb in ({','.join(WRITE_VERBS)})"
EXEC_FILTER = f"resource=pods subresource in ({','.join(EXEC_SUBRESOURCES)})"


def _clause(text: str) -> tuple[str, list[Any]]:
    """The filter as `kubetrail query` runs it, so the report and a re-run of its query agree."""
    return to_sql(parse_filter(text))


@dataclass(frozen=True)
class Period:
    """The half-open reporting window [since, until)."""

    since: datetime
    until: datetime

    def days(self) -> list[date]:
        first, last = self.since.date(), (self.until - timedelta(microseconds=1)).date()
        return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


@dataclass(frozen=True)
class SecretAccess:
    """Secret reads by one user in one namespace."""

    user: str
    namespace: str
    requests: int
    verbs: list[str]
    names: int


@dataclass(frozen=True)
class Request:
    """One request of interest (an RBAC change, an exec session)."""

    time: datetime
    user: str
    verb: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int | None
    audit_id: str


@dataclass(frozen=True)
class AlertCount:
    """Detection alerts of one rule in the period (evidence that the activity is monitored, not only logged)."""

    rule: str
    priority: str
    count: int


@dataclass(frozen=True)
class ClusterRetention:
    """The history one cluster's events span in the whole store, and the days in it without any event."""

    cluster: str
    oldest: datetime
    newest: datetime
    days_covered: int
    gap_days: list[date]


@dataclass(frozen=True)
class Integrity:
    """`kubetrail verify`'s answer."""

    ok: bool
    head: str
    files: int
    events: int
    findings: list[str]


@dataclass
class Evidence:
    """Everything measured for one store and period."""

    period: Period
    requests: int = 0
    events: int = 0
    events_per_day: list[tuple[date, int]] = field(default_factory=list)
    secret_reads_per_day: list[tuple[date, int]] = field(default_factory=list)
    secret_reads: int = 0
    secret_bodies_recorded: int = 0
    secret_access: list[SecretAccess] = field(default_factory=list)
    rbac_change_count: int = 0
    rbac_changes: list[Request] = field(default_factory=list)
    exec_count: int = 0
    exec_sessions: list[Request] = field(default_factory=list)
    missing_fields: dict[str, int] = field(default_factory=dict)
    alerts: list[AlertCount] = field(default_factory=list)
    retention: list[ClusterRetention] = field(default_factory=list)
    integrity: Integrity | None = None
    apiserver: list[CheckFinding] | None = None
    apiserver_source: str = ""

    @property
    def period_gap_days(self) -> list[date]:
        """Days of the period, within the store's history, on which no event at all was recorded."""
        seen = {day for day, count in self.events_per_day if count}
        spans = [(item.oldest.date(), item.newest.date()) for item in self.retention]
        if not spans:
            return []
        first, last = min(span[0] for span in spans), max(span[1] for span in spans)
        return [day for day in self.period.days() if first <= day <= last and day not in seen]


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()


def _per_day(conn: duckdb.DuckDBPyConnection, text: str | None, period: Period) -> list[tuple[date, int]]:
    where, params = _clause(text) if text else ("true", [])
    found = dict(
        _rows(
            conn,
            f"SELECT CAST(time AS DATE) AS day, count(DISTINCT {_REQUEST}) FROM events "
            f"WHERE time >= ? AND time < ? AND ({where}) GROUP BY day",
            [period.since, period.until, *params],
        )
    )
    return [(day, int(found.get(day, 0))) for day in period.days()]


def _requests(conn: duckdb.DuckDBPyConnection, text: str, period: Period) -> tuple[int, list[Request]]:
    where, params = _clause(text)
    rows = _rows(
        conn,
        f"SELECT min(time) AS first, any_value(user), any_value(verb), any_value(resource), any_value(subresource), "
        f"any_value(namespace), any_value(name), max(response_code), {_REQUEST} AS request FROM events "
        f"WHERE time >= ? AND time < ? AND ({where}) GROUP BY request ORDER BY first, request",
        [period.since, period.until, *params],
    )
    items = [
        Request(
            time=row[0],
            user=row[1] or "",
            verb=row[2] or "",
            resource=row[3] or "",
            subresource=row[4] or "",
            namespace=row[5] or "",
            name=row[6] or "",
            code=row[7],
            audit_id=row[8] or "",
        )
        for row in rows
    ]
    return len(items), items[:MAX_ITEMS]


def _retention(conn: duckdb.DuckDBPyConnection) -> list[ClusterRetention]:
    result: list[ClusterRetention] = []
    rows = _rows(
        conn,
        "SELECT cluster, min(time), max(time), list(DISTINCT CAST(time AS DATE)) FROM events "
        "GROUP BY cluster ORDER BY cluster",
        [],
    )
    for cluster, oldest, newest, days in rows:
        first, last = oldest.date(), newest.date()
        span = (last - first).days + 1
        present = set(days)
        gaps = [
            first + timedelta(days=offset) for offset in range(span) if first + timedelta(days=offset) not in present
        ]
        result.append(ClusterRetention(str(cluster), oldest, newest, span, gaps))
    return result


def _alerts(conn: duckdb.DuckDBPyConnection, period: Period) -> list[AlertCount]:
    """Alerts per rule in the period, most severe first (none when the store has no `alerts` view)."""
    tables = {str(row[0]) for row in _rows(conn, "SELECT view_name FROM duckdb_views() WHERE NOT internal", [])}
    if "alerts" not in tables:
        return []
    naive = [period.since.astimezone(UTC).replace(tzinfo=None), period.until.astimezone(UTC).replace(tzinfo=None)]
    rows = _rows(
        conn,
        "SELECT rule, any_value(priority), min(priority_rank) AS rank, count(*) AS alerts FROM alerts "
        "WHERE time >= ? AND time < ? GROUP BY rule ORDER BY rank, alerts DESC, rule",
        naive,
    )
    return [AlertCount(str(rule), str(priority or ""), int(count)) for rule, priority, _, count in rows]


def collect_evidence(
    conn: duckdb.DuckDBPyConnection,
    period: Period,
    *,
    verify: VerifyReport | None = None,
    apiserver: list[CheckFinding] | None = None,
    apiserver_source: str = "",
) -> Evidence:
    """Run every evidence query over `conn`'s `events` view for `period`."""
    evidence = Evidence(period=period, apiserver=apiserver, apiserver_source=apiserver_source)
    window = [period.since, period.until]
    total = _rows(
        conn, f"SELECT count(*), count(DISTINCT {_REQUEST}) FROM events WHERE time >= ? AND time < ?", window
    )[0]
    evidence.events, evidence.requests = int(total[0]), int(total[1])
    evidence.events_per_day = _per_day(conn, None, period)
    evidence.secret_reads_per_day = _per_day(conn, SECRET_FILTER, period)
    secret_where, secret_params = _clause(SECRET_FILTER)
    evidence.secret_access = [
        SecretAccess(user or "", namespace or "", int(requests), list(verbs), int(names))
        for user, namespace, requests, verbs, names in _rows(
            conn,
            f"SELECT user, namespace, count(DISTINCT {_REQUEST}) AS requests, list(DISTINCT verb ORDER BY verb), "
            f"count(DISTINCT name) FROM events WHERE time >= ? AND time < ? AND ({secret_where}) "
            "GROUP BY ALL ORDER BY requests DESC, user, namespace",
            [*window, *secret_params],
        )
    ]
    evidence.secret_reads = sum(item.requests for item in evidence.secret_access)
    evidence.secret_bodies_recorded = int(
        _rows(
            conn,
            f"SELECT count(DISTINCT {_REQUEST}) FROM events WHERE time >= ? AND time < ? "
            "AND resource = 'secrets' AND level IN ('Request', 'RequestResponse')",
            window,
        )[0][0]
    )
    evidence.rbac_change_count, evidence.rbac_changes = _requests(conn, RBAC_FILTER, period)
    evidence.exec_count, evidence.exec_sessions = _requests(conn, EXEC_FILTER, period)
    missing = _rows(
        conn,
        "SELECT count(*) FILTER (WHERE user IS NULL), count(*) FILTER (WHERE source_ip IS NULL), "
        "count(*) FILTER (WHERE response_code IS NULL), count(*) FILTER (WHERE request_uri IS NULL) "
        "FROM events WHERE time >= ? AND time < ? AND stage = 'ResponseComplete'",
        window,
    )[0]
    evidence.missing_fields = dict(
        zip(("user", "source_ip", "response_code", "request_uri"), map(int, missing), strict=True)
    )
    evidence.retention = _retention(conn)
    evidence.alerts = _alerts(conn, period)
    if verify is not None:
        evidence.integrity = Integrity(
            ok=verify.ok,
            head=verify.head,
            files=verify.files,
            events=verify.rows,
            findings=[str(finding) for finding in verify.findings],
        )
    return evidence
