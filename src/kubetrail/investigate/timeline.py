"""`timeline`: everything one identity did, in order, split into sessions wherever it paused for long."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyarrow as pa

from kubetrail.investigate.report import DETAIL_COLUMNS, Report
from kubetrail.query.source import Source, Window

DEFAULT_GAP = timedelta(minutes=30)


@dataclass(frozen=True)
class Session:
    """Requests with no pause longer than the gap between two of them."""

    number: int
    start: datetime
    end: datetime
    requests: int
    denied: int
    top_actions: list[str]
    source_ips: list[str]
    user_agents: list[str]


def identity_filter(identity: str) -> str:
    """`sa:NS/NAME` or `NS/NAME`-looking service accounts, otherwise a username (quoted for the filter)."""
    if identity.startswith("sa:"):
        return f'sa="{identity[3:]}"'
    return 'user="' + identity.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sessions_of(requests: pa.Table, gap: timedelta) -> list[Session]:
    """Split requests (one row each, oldest first) into sessions at pauses longer than `gap`."""
    sessions: list[Session] = []
    rows = requests.to_pylist()
    start = 0
    for index in range(1, len(rows) + 1):
        if index < len(rows) and rows[index]["time"] - rows[index - 1]["time"] <= gap:
            continue
        chunk = rows[start:index]
        actions = Counter(
            f"{row['verb']} {row['resource'] or row['request_uri'] or ''}"
            + (f"/{row['subresource']}" if row["subresource"] else "")
            for row in chunk
        )
        sessions.append(
            Session(
                number=len(sessions) + 1,
                start=chunk[0]["time"],
                end=chunk[-1]["time"],
                requests=len(chunk),
                denied=sum(1 for row in chunk if (row["response_code"] or 0) >= 400),
                top_actions=[f"{action} x{count}" for action, count in actions.most_common(5)],
                source_ips=sorted({row["source_ip"] for row in chunk if row["source_ip"]}),
                user_agents=sorted({row["user_agent"] for row in chunk if row["user_agent"]}),
            )
        )
        start = index
    return sessions


@dataclass
class Timeline:
    report: Report
    sessions: list[Session]


def timeline(source: Source, identity: str, window: Window | None = None, *, gap: timedelta = DEFAULT_GAP) -> Timeline:
    """Every event of `identity` (a username, or `sa:NAMESPACE/NAME`) in order, and its sessions."""
    text = identity_filter(identity)
    events = source.select(text, window, columns=[*DETAIL_COLUMNS, "event"])
    clause, params = source.where(text, window)
    # One row per request: its last stage (what the request ended as).
    requests = source.sql(
        "SELECT time, verb, resource, subresource, request_uri, response_code, source_ip, user_agent "
        f"FROM {source.relation} "
        f"WHERE {clause} QUALIFY row_number() OVER (PARTITION BY audit_id ORDER BY stage_time DESC NULLS LAST) = 1 "
        "ORDER BY time, audit_id",
        params,
    )
    sessions = sessions_of(requests, gap)
    summary = pa.Table.from_pylist(
        [
            {
                "session": item.number,
                "start": item.start,
                "end": item.end,
                "requests": item.requests,
                "denied": item.denied,
                "top_actions": item.top_actions,
                "source_ips": item.source_ips,
                "user_agents": item.user_agents,
            }
            for item in sessions
        ]
    )
    headline = [f"{identity}: {requests.num_rows:,} request(s) in {len(sessions)} session(s) (pauses > {gap} split)"]
    if sessions:
        headline.append(f"first {sessions[0].start:%Y-%m-%dT%H:%M:%SZ}, last {sessions[-1].end:%Y-%m-%dT%H:%M:%SZ}")
    report = Report(title=f"Timeline of {identity}", filter=text, headline=headline, summary=summary, events=events)
    return Timeline(report, sessions)
