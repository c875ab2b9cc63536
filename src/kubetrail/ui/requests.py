"""Requests, not stages: the stage events of one request (same auditID) merged into the row a list shows.

kube-apiserver writes up to four events per request (RequestReceived, ResponseStarted for long-running
requests, ResponseComplete, Panic), all with the same auditID and requestReceivedTimestamp. A page of requests
is chosen on (time, auditID) first, then only those requests' stages are read, so lists page by request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

STAGE_COLUMNS = (
    "time",
    "stage_time",
    "stage",
    "cluster",
    "user",
    "impersonated_user",
    "verb",
    "resource",
    "subresource",
    "namespace",
    "name",
    "request_uri",
    "response_code",
    "source_ip",
    "user_agent",
    "audit_id",
)
STAGE_SELECT = ", ".join(f'"{name}"' for name in STAGE_COLUMNS)
STAGE_ORDER = {"RequestReceived": 0, "ResponseStarted": 1, "ResponseComplete": 2, "Panic": 3}
STAGE_SHORT = {"RequestReceived": "RR", "ResponseStarted": "RS", "ResponseComplete": "RC", "Panic": "P"}
COMPLETED = "(stage IS NULL OR stage NOT IN ('RequestReceived', 'ResponseStarted'))"
"""SQL true for the one event that completes a request (ResponseComplete or Panic): counting these rows counts
requests without reading the auditIDs, which costs far less than a distinct count."""
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class Stage:
    """One stage event of a request (flat columns only)."""

    stage: str | None
    time: datetime
    code: int | None


@dataclass(frozen=True)
class RequestRow:
    """One request: its stages merged (first and last stage time, latency, the final code, the stages seen)."""

    audit_id: str | None
    time: datetime
    last: datetime
    stages: tuple[Stage, ...]
    code: int | None
    cluster: str | None
    user: str | None
    impersonated_user: str | None
    verb: str | None
    resource: str | None
    subresource: str | None
    namespace: str | None
    name: str | None
    uri: str | None
    source_ip: str | None
    user_agent: str | None
    new_session: bool = False

    @property
    def latency(self) -> timedelta:
        return self.last - self.time

    @property
    def latency_ms(self) -> float:
        return self.latency.total_seconds() * 1000

    @property
    def stage_names(self) -> str:
        return "+".join(STAGE_SHORT.get(stage.stage or "", stage.stage or "?") for stage in self.stages)

    @property
    def failed(self) -> bool:
        return self.code is not None and self.code >= 400

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS

    @property
    def object_ref(self) -> str:
        """`resource[/subresource] [namespace/]name`, or the URI of a non-resource request."""
        if not self.resource:
            return self.uri or ""
        kind = self.resource + (f"/{self.subresource}" if self.subresource else "")
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{kind} {where}{self.name}" if self.name else kind + (f" in {self.namespace}" if self.namespace else "")


def merge(values: Sequence[tuple[Any, ...]]) -> list[RequestRow]:
    """Stage rows (in STAGE_COLUMNS order) → one RequestRow per auditID, in first-seen order of the input."""
    grouped: dict[object, list[dict[str, Any]]] = {}
    for number, row in enumerate(values):
        item = dict(zip(STAGE_COLUMNS, row, strict=False))
        key = item["audit_id"] if item["audit_id"] else ("row", number)
        grouped.setdefault(key, []).append(item)
    return [_merged(items) for items in grouped.values()]


def _merged(items: list[dict[str, Any]]) -> RequestRow:
    items.sort(key=lambda item: (STAGE_ORDER.get(item["stage"] or "", 9), item["stage_time"] or item["time"]))
    stages = tuple(Stage(item["stage"], item["stage_time"] or item["time"], item["response_code"]) for item in items)
    final = next((item["response_code"] for item in reversed(items) if item["response_code"] is not None), None)
    first = min(item["time"] for item in items)
    last = max(stage.time for stage in stages)

    def known(name: str) -> Any:
        return next((item[name] for item in items if item[name] is not None), None)

    return RequestRow(
        audit_id=items[0]["audit_id"],
        time=first,
        last=max(last, first),
        stages=stages,
        code=final,
        cluster=known("cluster"),
        user=known("user"),
        impersonated_user=known("impersonated_user"),
        verb=known("verb"),
        resource=known("resource"),
        subresource=known("subresource"),
        namespace=known("namespace"),
        name=known("name"),
        uri=known("request_uri"),
        source_ip=known("source_ip"),
        user_agent=known("user_agent"),
    )


@dataclass(frozen=True)
class RequestPage:
    """A page of requests and whether another one follows."""

    rows: list[RequestRow]
    page: int
    size: int
    has_next: bool


def pick(
    cursor: duckdb.DuckDBPyConnection,
    where: str,
    params: Sequence[object],
    *,
    descending: bool,
    limit: int,
) -> list[tuple[datetime, str | None]]:
    """The first `limit` (time, auditID) pairs of the requests with a stage matching `where`."""
    direction = "DESC" if descending else "ASC"
    return [
        (row[0], row[1])
        for row in cursor.execute(
            f"SELECT time, audit_id FROM events WHERE {where} GROUP BY time, audit_id "
            f"ORDER BY time {direction}, audit_id {direction} LIMIT {int(limit)}",
            list(params),
        ).fetchall()
    ]


CLUSTER_GAP = timedelta(minutes=15)
"""Requests further apart than this are read by separate branches of one query, each bounded by its times (so
the row groups between them are skipped); closer ones share a branch, so a row group is decoded once."""
MAX_BRANCHES = 3
"""At most this many branches (the closest clusters are joined): each branch opens every sealed file's footer."""


def stages_of(
    cursor: duckdb.DuckDBPyConnection, keys: Sequence[tuple[datetime, str | None]], *, slack: timedelta = timedelta()
) -> list[RequestRow]:
    """Every stage of the requests `keys` (time, auditID), merged, in the keys' order.

    The stages share the request's time, so each read is bounded by the keys' times: keys close in time are
    read together, distant ones by their own branch of a UNION ALL, so Parquet statistics skip every row group
    that holds none of them (a history spread over days reads a few row groups, not the days between)."""
    wanted = sorted((time, audit_id) for time, audit_id in keys if audit_id)
    if not wanted:
        return []
    clusters: list[list[tuple[datetime, str]]] = [[wanted[0]]]
    for item in wanted[1:]:
        if item[0] - clusters[-1][-1][0] > CLUSTER_GAP:
            clusters.append([item])
        else:
            clusters[-1].append(item)
    while len(clusters) > MAX_BRANCHES:
        gaps = [clusters[index + 1][0][0] - clusters[index][-1][0] for index in range(len(clusters) - 1)]
        closest = gaps.index(min(gaps))
        clusters[closest : closest + 2] = [clusters[closest] + clusters[closest + 1]]
    branches, params = [], list[object]()
    for cluster in clusters:
        if slack:
            branches.append(f"SELECT {STAGE_SELECT} FROM events WHERE time BETWEEN ? AND ?")
            params.extend([cluster[0][0] - slack, cluster[-1][0] + slack])
            continue
        # a request's stages all carry its time: matching the times (a narrow column whose statistics prune row
        # groups) costs far less than decoding every auditID of the range; other requests of the same
        # microsecond are dropped below
        times = sorted({time for time, _ in cluster})
        placeholders = ", ".join("?" for _ in times)
        branches.append(f"SELECT {STAGE_SELECT} FROM events WHERE time BETWEEN ? AND ? AND time IN ({placeholders})")
        params.extend([times[0], times[-1], *times])
    wanted_ids = {audit_id for _, audit_id in wanted}
    found = [row for row in cursor.execute(" UNION ALL ".join(branches), params).fetchall() if row[-1] in wanted_ids]
    by_id = {row.audit_id: row for row in merge(found)}
    return [by_id[audit_id] for _, audit_id in keys if audit_id in by_id]
