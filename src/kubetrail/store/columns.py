"""The flat columns kept for every stored event, extracted once from the decoded Event.

Sealed Parquet files hold `FILE_SCHEMA`; `date` and `cluster` come from the Hive-style
directory names (`date=YYYY-MM-DD/cluster=NAME/`), as Spark, Trino and Athena expect.
The unsealed tail carries them as real columns (`TAIL_SCHEMA`) so both union cleanly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from kubetrail.model import Event, encode_event, parse_microtime

DECISION_ANNOTATION = "authorization.k8s.io/decision"
REASON_ANNOTATION = "authorization.k8s.io/reason"
_V1BETA1_MARK = b"audit.k8s.io/v1beta1"

TIMESTAMP = pa.timestamp("us", tz="UTC")

FILE_SCHEMA = pa.schema(
    [
        pa.field("time", TIMESTAMP),
        pa.field("stage_time", TIMESTAMP),
        pa.field("stage", pa.string()),
        pa.field("level", pa.string()),
        pa.field("verb", pa.string()),
        pa.field("user", pa.string()),
        pa.field("groups", pa.list_(pa.string())),
        pa.field("impersonated_user", pa.string()),
        pa.field("source_ip", pa.string()),
        pa.field("source_ips", pa.list_(pa.string())),
        pa.field("user_agent", pa.string()),
        pa.field("resource", pa.string()),
        pa.field("subresource", pa.string()),
        pa.field("namespace", pa.string()),
        pa.field("name", pa.string()),
        pa.field("api_group", pa.string()),
        pa.field("api_version", pa.string()),
        pa.field("response_code", pa.int32()),
        pa.field("authz_decision", pa.string()),
        pa.field("authz_reason", pa.string()),
        pa.field("request_uri", pa.string()),
        pa.field("audit_id", pa.string()),
        pa.field("event", pa.string()),
        pa.field("dedup_key", pa.int64()),
    ]
)
PARTITION_FIELDS = [pa.field("date", pa.date32()), pa.field("cluster", pa.string())]
TAIL_SCHEMA = pa.schema([*FILE_SCHEMA, *PARTITION_FIELDS])
COLUMN_NAMES = tuple(TAIL_SCHEMA.names)
# Columns whose values repeat a lot; the JSON and the hash are better stored plain.
PLAIN_COLUMNS = frozenset({"event", "dedup_key", "audit_id", "request_uri", "time", "stage_time"})


def dedup_key(cluster: str, audit_id: str, stage: str, raw: bytes) -> int:
    """A 64-bit key for (cluster, auditID, stage); events without an auditID are keyed by their content."""
    material = f"{cluster}\x00{audit_id}\x00{stage}".encode() if audit_id else cluster.encode() + b"\x00\x00" + raw
    return int.from_bytes(hashlib.blake2b(material, digest_size=8).digest(), "little", signed=True)


def event_json(event: Event, raw: bytes | None) -> bytes:
    """The stored JSON: the bytes as received (unknown fields kept), re-encoded as `v1` when they were `v1beta1`."""
    if raw is None or _V1BETA1_MARK in raw:
        return encode_event(event)
    return raw.strip()


def _times(texts: list[str | None], fallback: datetime) -> pa.Array:
    array = pa.array(texts, pa.string())
    try:
        times = array.cast(TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        times = pa.array([_parse_or_none(text) for text in texts], TIMESTAMP)
    if times.null_count:
        times = pc.fill_null(times, pa.scalar(fallback, TIMESTAMP))
    return times


def _parse_or_none(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_microtime(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Built:
    """The Arrow rows of a batch and the JSON document of each row (what the WAL records)."""

    batch: pa.RecordBatch
    lines: list[bytes]


def build_batch(
    cluster: str,
    events: Sequence[Event],
    raw_lines: Sequence[bytes | None] | None = None,
    *,
    received: datetime | None = None,
) -> Built:
    """Arrow rows in `TAIL_SCHEMA` for events of one cluster, plus each event's stored JSON.

    `time` is requestReceivedTimestamp (the same for every stage of a request, so all stages land in the same
    day partition), else stageTimestamp, else `received`.
    """
    received = received or datetime.now(UTC)
    times: list[str | None] = []
    stage_times: list[str | None] = []
    stages: list[str] = []
    levels: list[str] = []
    verbs: list[str | None] = []
    users: list[str | None] = []
    groups: list[list[str] | None] = []
    impersonated: list[str | None] = []
    source_ip: list[str | None] = []
    source_ips: list[list[str] | None] = []
    agents: list[str | None] = []
    resources: list[str | None] = []
    subresources: list[str | None] = []
    namespaces: list[str | None] = []
    names: list[str | None] = []
    api_groups: list[str | None] = []
    api_versions: list[str | None] = []
    codes: list[int | None] = []
    decisions: list[str | None] = []
    reasons: list[str | None] = []
    uris: list[str | None] = []
    audit_ids: list[str] = []
    jsons: list[bytes] = []
    keys: list[int] = []
    for index, event in enumerate(events):
        raw = raw_lines[index] if raw_lines is not None else None
        document = event_json(event, raw)
        times.append(event.requestReceivedTimestamp or event.stageTimestamp or None)
        stage_times.append(event.stageTimestamp or None)
        stage = str(event.stage)
        stages.append(stage)
        levels.append(str(event.level))
        verbs.append(event.verb or None)
        user = event.user
        users.append(user.username or None)
        groups.append(user.groups or None)
        impersonated.append(event.impersonatedUser.username or None if event.impersonatedUser else None)
        ips = event.sourceIPs
        source_ip.append(ips[0] if ips else None)
        source_ips.append(ips or None)
        agents.append(event.userAgent or None)
        ref = event.objectRef
        if ref is None:
            resources.append(None)
            subresources.append(None)
            namespaces.append(None)
            names.append(None)
            api_groups.append(None)
            api_versions.append(None)
        else:
            resources.append(ref.resource or None)
            subresources.append(ref.subresource or None)
            namespaces.append(ref.namespace or None)
            names.append(ref.name or None)
            api_groups.append(ref.apiGroup or None)
            api_versions.append(ref.apiVersion or None)
        status = event.responseStatus
        codes.append(status.code or None if status is not None else None)
        annotations = event.annotations
        decisions.append(annotations.get(DECISION_ANNOTATION) if annotations else None)
        reasons.append(annotations.get(REASON_ANNOTATION) if annotations else None)
        uris.append(event.requestURI or None)
        audit_ids.append(event.auditID)
        jsons.append(document)
        keys.append(dedup_key(cluster, event.auditID, stage, document))
    time_array = _times(times, received)
    count = len(audit_ids)
    columns: list[pa.Array] = [
        time_array,
        _times_nullable(stage_times),
        pa.array(stages, pa.string()),
        pa.array(levels, pa.string()),
        pa.array(verbs, pa.string()),
        pa.array(users, pa.string()),
        pa.array(groups, pa.list_(pa.string())),
        pa.array(impersonated, pa.string()),
        pa.array(source_ip, pa.string()),
        pa.array(source_ips, pa.list_(pa.string())),
        pa.array(agents, pa.string()),
        pa.array(resources, pa.string()),
        pa.array(subresources, pa.string()),
        pa.array(namespaces, pa.string()),
        pa.array(names, pa.string()),
        pa.array(api_groups, pa.string()),
        pa.array(api_versions, pa.string()),
        pa.array(codes, pa.int32()),
        pa.array(decisions, pa.string()),
        pa.array(reasons, pa.string()),
        pa.array(uris, pa.string()),
        pa.array(audit_ids, pa.string()),
        pa.array(jsons, pa.binary()).cast(pa.string()),
        pa.array(keys, pa.int64()),
        pc.cast(time_array, pa.date32()),
        pa.array([cluster] * count, pa.string()),
    ]
    return Built(pa.RecordBatch.from_arrays(columns, schema=TAIL_SCHEMA), jsons)


def _times_nullable(texts: list[str | None]) -> pa.Array:
    try:
        return pa.array(texts, pa.string()).cast(TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([_parse_or_none(text) for text in texts], TIMESTAMP)


def empty_tail() -> pa.Table:
    """A tail with no rows, for views over a store that has nothing unsealed."""
    return TAIL_SCHEMA.empty_table()
