"""`new-identities`: users and service accounts whose first request falls in the window."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa

from kubetrail.investigate.report import DETAIL_COLUMNS, Report
from kubetrail.query.source import Source, Window

DEFAULT_SPAN = timedelta(hours=24)


def kind_of(user: str) -> str:
    if user.startswith("system:serviceaccount:"):
        return "serviceaccount"
    if user.startswith("system:node:"):
        return "node"
    if user in ("system:anonymous",):
        return "anonymous"
    if user.startswith("system:"):
        return "system"
    return "user"


def new_identities(source: Source, window: Window | None = None, *, events: bool = True) -> Report:
    """Identities first seen in the window; everything before it is the baseline.

    Without --since the window is the last 24 hours of the data (counted back from its newest event).
    """
    window = window or Window()
    cluster_clause, cluster_params = source.where("", Window(cluster=window.cluster))
    if not window.since:
        newest = source.sql(f"SELECT max(time) AS newest FROM {source.relation} WHERE {cluster_clause}", cluster_params)
        value = newest.column("newest")[0].as_py()
        since = "1970-01-01T00:00:00Z" if value is None else (value - DEFAULT_SPAN).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        window = Window(since=since, until=window.until, cluster=window.cluster)
    bounds_clause, bounds_params = source.where("", Window(since=window.since, until=window.until))
    table = source.sql(
        'SELECT * FROM (SELECT "user", min(time) AS "time", count(DISTINCT audit_id) AS requests, '
        "arg_min(verb || ' ' || coalesce(resource, request_uri, ''), time) AS first_action, "
        "list(DISTINCT source_ip ORDER BY source_ip) FILTER (WHERE source_ip IS NOT NULL) AS source_ips, "
        "arg_min(user_agent, time) AS user_agent "
        f'FROM {source.relation} WHERE "user" IS NOT NULL AND {cluster_clause} GROUP BY "user") '
        f'WHERE {bounds_clause} ORDER BY time, "user"',
        [*cluster_params, *bounds_params],
    )
    rows = table.to_pylist()
    for row in rows:
        row["kind"] = kind_of(row["user"])
    users = [row["user"] for row in rows]
    clause, params = source.where("", Window(since=window.since, until=window.until, cluster=window.cluster))
    columns = ", ".join(f'"{name}"' for name in [*DETAIL_COLUMNS, *(["event"] if events else [])])
    detail = source.sql(
        f'SELECT {columns} FROM {source.relation} WHERE {clause} AND list_contains(?::VARCHAR[], "user") '
        "ORDER BY time, stage_time, audit_id",
        [*params, users],
    )
    summary = pa.Table.from_pylist(
        [
            {
                "user": row["user"],
                "kind": row["kind"],
                "first_seen": row["time"],
                "requests": row["requests"],
                "first_action": row["first_action"],
                "source_ips": row["source_ips"],
                "user_agent": row["user_agent"],
            }
            for row in rows
        ]
    )
    kinds = sorted({row["kind"] for row in rows})
    headline = [
        f"{len(rows)} identit{'y' if len(rows) == 1 else 'ies'} first seen since {window.since}"
        + (f" ({', '.join(kinds)})" if kinds else "")
    ]
    return Report(
        title="New identities", filter=f"since={window.since}", headline=headline, summary=summary, events=detail
    )
