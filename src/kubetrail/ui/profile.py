"""What an investigator asks about one identity beyond its timeline: when it was active, what alerts name it,
whom it impersonated (and who impersonated it), which service-account tokens it obtained and who used those
accounts afterwards, and the source IPs and user agents it came from, in the order they were first seen.

In a Kubernetes audit event an impersonated request carries the impersonator in `user` and the identity it
acted as in `impersonatedUser`; a TokenRequest is a `create` of `serviceaccounts/token` on the account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from kubetrail.ui import charts
from kubetrail.ui.requests import COMPLETED

LIMIT = 50
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class Seen:
    """A value (an address, a client, another identity) with its first and last time and request count."""

    value: str
    first: datetime
    last: datetime
    requests: int


@dataclass(frozen=True)
class TokenGrant:
    """A service-account token the identity obtained, and the account's requests from then on, by address and
    client (a token cannot be told from the account's other credentials in the audit log)."""

    time: datetime
    audit_id: str
    account: str
    code: int | None
    used_from: list[tuple[str, str, datetime, int]]


@dataclass(frozen=True)
class Activity:
    """Requests per step from `start`, allowed and refused."""

    start: datetime
    step: timedelta
    series: dict[str, list[int]]


@dataclass(frozen=True)
class Profile:
    """The identity page's sections besides the timeline."""

    activity: Activity | None
    impersonated: list[Seen] = field(default_factory=list)
    impersonated_by: list[Seen] = field(default_factory=list)
    tokens: list[TokenGrant] = field(default_factory=list)
    source_ips: list[Seen] = field(default_factory=list)
    user_agents: list[Seen] = field(default_factory=list)


def service_account_user(namespace: str | None, name: str | None) -> str:
    """The user name a service account's tokens authenticate as."""
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace or ''}:{name or ''}"


def _seen(rows: list[tuple[Any, ...]]) -> list[Seen]:
    return [Seen(str(row[0]), row[1], row[2], int(row[3])) for row in rows if row[0] is not None]


def profile(cursor: duckdb.DuckDBPyConnection, user: str) -> Profile:
    """Everything but the timeline about `user` (an exact user name).

    Activity, addresses, clients and impersonation come from the snapshot's pre-aggregation `facts_all` (exact
    per-minute counts and first and last times by user, address, client and impersonated user); only the
    TokenRequests are read from the events."""
    grouped = cursor.execute(
        "SELECT grouping(source_ip, user_agent, impersonated_user) AS g, "
        "coalesce(source_ip, user_agent, impersonated_user), min(_first), max(_last), sum(_requests) "
        'FROM facts_all WHERE "user" = ? '
        "GROUP BY GROUPING SETS ((source_ip), (user_agent), (impersonated_user), ())",
        [user],
    ).fetchall()
    everything = next((row for row in grouped if row[0] == 0b111), None)
    if everything is None or everything[2] is None:
        return Profile(None)

    def by(mask: int) -> list[Seen]:
        rows = sorted((row[1:] for row in grouped if row[0] == mask and row[1] is not None), key=lambda row: row[1])
        return _seen(rows[:LIMIT])

    impersonated_by = _seen(
        cursor.execute(
            'SELECT "user", min(_first), max(_last), sum(_requests) FROM facts_all '
            "WHERE impersonated_user = ? GROUP BY 1 ORDER BY 2 LIMIT ?",
            [user, LIMIT],
        ).fetchall()
    )
    return Profile(
        activity(cursor, user, everything[2], everything[3]),
        by(0b110),
        impersonated_by,
        tokens(cursor, user),
        by(0b011),
        by(0b101),
    )


def activity(cursor: duckdb.DuckDBPyConnection, user: str, first: datetime, last: datetime) -> Activity:
    """The identity's requests per round step over its own first-to-last range."""
    step = charts.bucket_step(max(last - first, timedelta(seconds=1)), 90)
    seconds = int(step.total_seconds())
    origin = int(first.timestamp()) // seconds
    length = int(last.timestamp()) // seconds - origin + 1
    allowed, refused = [0] * length, [0] * length
    if seconds % 60 == 0:  # whole minutes fall whole into a step
        sql = (
            f"SELECT epoch(_minute)::BIGINT // {seconds} AS b, sum(_requests), "
            'sum(_requests) FILTER (WHERE response_code >= 400) FROM facts_all WHERE "user" = ? GROUP BY b'
        )
        values: list[object] = [user]
    else:
        sql = (
            f"SELECT epoch(time)::BIGINT // {seconds} AS b, count(*) FILTER (WHERE {COMPLETED}), "
            f"count(*) FILTER (WHERE {COMPLETED} AND response_code >= 400) "
            'FROM events WHERE "user" = ? AND time BETWEEN ? AND ? GROUP BY b'
        )
        values = [user, first, last]
    for bucket, requests, bad in cursor.execute(sql, values).fetchall():
        position = int(bucket) - origin
        if 0 <= position < length:
            allowed[position] += int(requests) - int(bad or 0)
            refused[position] += int(bad or 0)
    return Activity(
        datetime.fromtimestamp(origin * seconds, UTC), step, {"succeeded": allowed, "refused or failed": refused}
    )


def tokens(cursor: duckdb.DuckDBPyConnection, user: str) -> list[TokenGrant]:
    """The service accounts `user` obtained tokens for (TokenRequests, first one each), with each account's
    requests from its first grant on, by address and client (one query for every account)."""
    requested = "\"user\" = ? AND resource = 'serviceaccounts' AND subresource = 'token' AND verb = 'create'"
    span = cursor.execute(f"SELECT min(_first), max(_last) FROM facts_all WHERE {requested}", [user]).fetchone()
    if span is None or span[0] is None:
        return []
    grants = cursor.execute(
        "SELECT min(time), arg_min(audit_id, time), namespace, name, max(response_code) FROM events "
        f"WHERE {requested} AND time BETWEEN ? AND ? GROUP BY namespace, name ORDER BY 1 LIMIT ?",
        [user, span[0], span[1], LIMIT],
    ).fetchall()
    if not grants:
        return []
    accounts = [(service_account_user(namespace, name), when) for when, _, namespace, name, _ in grants]
    values = ", ".join("(?, ?)" for _ in accounts)
    # the minute of the grant from the events, every later minute from the pre-aggregation
    used: dict[str, list[tuple[str, str, datetime, int]]] = {}
    for account, address, client, first, count in cursor.execute(
        "SELECT account, address, client, min(first), sum(n) FROM ("
        f"SELECT e.\"user\" AS account, coalesce(e.source_ip, '') AS address, coalesce(e.user_agent, '') AS client, "
        f"e.time AS first, CASE WHEN {COMPLETED.replace('stage', 'e.stage')} THEN 1 ELSE 0 END AS n FROM events e "
        f'JOIN (VALUES {values}) AS g(account, since) ON e."user" = g.account AND e.time >= g.since '
        "AND e.time < time_bucket(INTERVAL 1 MINUTE, g.since) + INTERVAL 1 MINUTE "
        "WHERE e.time BETWEEN ? AND ? "
        "UNION ALL SELECT f.\"user\", coalesce(f.source_ip, ''), coalesce(f.user_agent, ''), f._first, f._requests "
        f'FROM facts_all f JOIN (VALUES {values}) AS g(account, since) ON f."user" = g.account '
        "AND f._minute > time_bucket(INTERVAL 1 MINUTE, g.since)"
        ") GROUP BY 1, 2, 3 ORDER BY 4",
        [
            *(item for pair in accounts for item in pair),
            min(when for _, when in accounts),
            max(when for _, when in accounts) + timedelta(minutes=1),
            *(item for pair in accounts for item in pair),
        ],
    ).fetchall():
        used.setdefault(str(account), []).append((str(address), str(client), first, int(count)))
    return [
        TokenGrant(when, str(audit_id), account, code, used.get(account, [])[:20])
        for (when, audit_id, _, _, code), (account, _) in zip(grants, accounts, strict=True)
    ]
