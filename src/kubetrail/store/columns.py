"""What the store keeps of each event, and where each column comes from.

On the hot path (`build_rows`) only what durability and dedup need is taken from the decoded Event: the JSON,
the time, the day partition and the dedup key. The flat query columns are then derived from the JSON in bulk
by DuckDB (`FLAT_SELECT`), both when a segment is sealed and in the view of the unsealed tail, so appending
stays cheap and sealed and unsealed rows have identical columns.

Sealed Parquet files hold `FILE_SCHEMA`; `date` and `cluster` come from the Hive-style directory names
(`date=YYYY-MM-DD/cluster=NAME/`), as Spark, Trino and Athena expect; the tail carries them as columns.
"""

from __future__ import annotations

import hashlib
import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa

from kubetrail.model import Event, encode_event, parse_microtime

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
# What the hot path keeps per row; FLAT_SELECT turns it into TAIL_SCHEMA.
ROW_SCHEMA = pa.schema(
    [
        pa.field("event", pa.string()),
        pa.field("time", TIMESTAMP),
        pa.field("dedup_key", pa.int64()),
        *PARTITION_FIELDS,
    ]
)
# Columns whose values repeat a lot get dictionary encoding; the JSON, ids and hashes are better plain.
PLAIN_COLUMNS = frozenset({"event", "dedup_key", "audit_id", "request_uri", "time", "stage_time"})

_STRUCTURE = (
    '{"level":"VARCHAR","auditID":"VARCHAR","stage":"VARCHAR","requestURI":"VARCHAR","verb":"VARCHAR",'
    '"user":{"username":"VARCHAR","groups":["VARCHAR"]},"impersonatedUser":{"username":"VARCHAR"},'
    '"sourceIPs":["VARCHAR"],"userAgent":"VARCHAR",'
    '"objectRef":{"resource":"VARCHAR","subresource":"VARCHAR","namespace":"VARCHAR","name":"VARCHAR",'
    '"apiGroup":"VARCHAR","apiVersion":"VARCHAR"},"responseStatus":{"code":"INTEGER"},"stageTimestamp":"VARCHAR",'
    '"annotations":{"authorization.k8s.io/decision":"VARCHAR","authorization.k8s.io/reason":"VARCHAR"}}'
)


def flat_select(relation: str, *, with_event: bool = True) -> str:
    """SQL turning a relation in ROW_SCHEMA into TAIL_SCHEMA's columns (each event's JSON parsed once).

    Without `with_event` the `event` column is left out (sealing takes it from the rows themselves, sparing a
    copy of every event's JSON).
    """
    event = "    event,\n" if with_event else ""
    return f"""
SELECT
    time,
    TRY_CAST(j.stageTimestamp AS TIMESTAMPTZ) AS stage_time,
    j.stage AS stage,
    j.level AS level,
    NULLIF(j.verb, '') AS verb,
    NULLIF(j.user.username, '') AS "user",
    CASE WHEN len(j.user.groups) > 0 THEN j.user.groups END AS groups,
    NULLIF(j.impersonatedUser.username, '') AS impersonated_user,
    j.sourceIPs[1] AS source_ip,
    CASE WHEN len(j.sourceIPs) > 0 THEN j.sourceIPs END AS source_ips,
    NULLIF(j.userAgent, '') AS user_agent,
    NULLIF(j.objectRef.resource, '') AS resource,
    NULLIF(j.objectRef.subresource, '') AS subresource,
    NULLIF(j.objectRef.namespace, '') AS namespace,
    NULLIF(j.objectRef.name, '') AS name,
    NULLIF(j.objectRef.apiGroup, '') AS api_group,
    NULLIF(j.objectRef.apiVersion, '') AS api_version,
    NULLIF(j.responseStatus.code, 0) AS response_code,
    j.annotations."authorization.k8s.io/decision" AS authz_decision,
    j.annotations."authorization.k8s.io/reason" AS authz_reason,
    NULLIF(j.requestURI, '') AS request_uri,
    j.auditID AS audit_id,
{event}    dedup_key,
    date,
    cluster
FROM (SELECT *, from_json(event, '{_STRUCTURE}') AS j FROM {relation})
"""


def dedup_key(cluster: str, audit_id: str, stage: str, raw: bytes) -> int:
    """A 64-bit key for (cluster, auditID, stage); events without an auditID are keyed by their content."""
    material = f"{cluster}\x00{audit_id}\x00{stage}".encode() if audit_id else cluster.encode() + b"\x00\x00" + raw
    return int.from_bytes(hashlib.blake2b(material, digest_size=8).digest(), "little", signed=True)


def event_json(event: Event, raw: bytes | None) -> bytes:
    """The stored JSON: the bytes as received (unknown fields kept), re-encoded as `v1` when they were `v1beta1`."""
    if raw is None or _V1BETA1_MARK in raw:
        return encode_event(event)
    return raw.strip()


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
"""An event stamped later than this after it was received (a skewed or forged clock) is filed as received."""


def _parse_or_none(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_microtime(text)
    except (ValueError, OverflowError):
        return None


def event_times(texts: list[str | None], fallback: datetime) -> pa.Array:
    """Timestamps (UTC, µs) from MicroTime strings, for the `time` column and the day partition.

    Missing, unparseable and implausible ones — before 1970, or more than FUTURE_SLACK after `fallback` (when
    the event was received) — become `fallback`, so a forged year-9999 stamp neither creates far-future
    partitions nor hides the real data in the UI; the event's own timestamps stay in its JSON.
    """
    import pyarrow.compute as pc  # loaded when writing; a read-only query never needs it

    array = pa.array(texts, pa.string())
    try:
        times = array.cast(TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
        times = pa.array([_parse_or_none(text) for text in texts], TIMESTAMP)
    earliest = pa.scalar(EARLIEST, TIMESTAMP)
    latest = pa.scalar(fallback + FUTURE_SLACK, TIMESTAMP)
    plausible = pc.and_(pc.greater_equal(times, earliest), pc.less_equal(times, latest))
    times = pc.if_else(plausible, times, pa.scalar(None, TIMESTAMP))
    if times.null_count:
        times = pc.fill_null(times, pa.scalar(fallback, TIMESTAMP))
    return times


def string_array(values: list[bytes], data: bytes | None = None) -> pa.Array:
    """UTF-8 validated Arrow strings from bytes, built from one joined buffer (4x faster than per value).

    `data` is `b"".join(values)` when the caller has it already. Raises pa.ArrowInvalid when a value is not UTF-8.
    """
    if data is None:
        data = b"".join(values)
    if len(data) >= 2**31:
        return pa.array(values, pa.binary()).cast(pa.string())
    offsets = pa.array([0, *itertools.accumulate(map(len, values))], pa.int32())
    array = pa.StringArray.from_buffers(len(values), offsets.buffers()[1], pa.py_buffer(data))
    array.validate(full=True)
    return array


def valid_utf8(lines: list[bytes], data: bytes | None = None) -> tuple[list[bytes], pa.Array]:
    """The lines as Arrow strings; invalid UTF-8 (which JSON decoding lets through in raw bodies) becomes U+FFFD."""
    try:
        return lines, string_array(lines, data)
    except pa.ArrowInvalid:
        fixed = [line.decode("utf-8", errors="replace").encode() for line in lines]
        return fixed, string_array(fixed)


_LITTLE_ENDIAN = sys.byteorder == "little"


def key_array(digests: list[bytes]) -> pa.Array:
    """8-byte BLAKE2b digests as the signed little-endian int64 keys `dedup_key` returns, without a Python int each."""
    if _LITTLE_ENDIAN:
        return pa.Array.from_buffers(pa.int64(), len(digests), [None, pa.py_buffer(b"".join(digests))])
    return pa.array([int.from_bytes(digest, "little", signed=True) for digest in digests], pa.int64())


@dataclass
class Rows:
    """The hot-path rows of one batch of one cluster: JSON, time, day and dedup key per event, as Arrow arrays.

    `lines` (the JSON as bytes, for the WAL record) is only needed until the batch is written; `release_lines`
    drops it, leaving one copy of each event: the Arrow strings.
    """

    cluster: str
    lines: list[bytes]
    documents: pa.Array
    times: pa.Array
    days: pa.Array
    key_values: pa.Array

    def __len__(self) -> int:
        return len(self.documents)

    @property
    def keys(self) -> list[int]:
        """The dedup keys as Python ints."""
        keys: list[int] = self.key_values.to_pylist()
        return keys

    @property
    def dates(self) -> list[date]:
        """The day partition of each row."""
        dates: list[date] = self.days.to_pylist()
        return dates

    def partitions(self) -> list[tuple[date, str]]:
        """(day, cluster) of each row; rows of the same day share one tuple."""
        import pyarrow.compute as pc

        distinct = pc.unique(self.days)
        if len(distinct) == 1:
            return [(distinct[0].as_py(), self.cluster)] * len(self)
        shared = {day: (day, self.cluster) for day in distinct.to_pylist()}
        return [shared[day] for day in self.days.to_pylist()]

    @property
    def nbytes(self) -> int:
        """Bytes of the stored JSON (what the tail holds per row, give or take 30)."""
        return len(self.documents.buffers()[2] or b"")

    def release_lines(self) -> None:
        self.lines = []

    def select(self, keep: list[bool]) -> Rows:
        """The rows whose `keep` flag is set."""
        mask = pa.array(keep, pa.bool_())
        return Rows(
            cluster=self.cluster,
            lines=[line for line, flag in zip(self.lines, keep, strict=True) if flag],
            documents=self.documents.filter(mask),
            times=self.times.filter(mask),
            days=self.days.filter(mask),
            key_values=self.key_values.filter(mask),
        )

    def record_batch(self) -> pa.RecordBatch:
        """The rows in ROW_SCHEMA."""
        return pa.RecordBatch.from_arrays(
            [
                self.documents,
                self.times,
                self.key_values,
                self.days,
                pa.repeat(pa.scalar(self.cluster, pa.string()), len(self)),
            ],
            schema=ROW_SCHEMA,
        )


def _stored_lines(events: Sequence[Event], raw_lines: Sequence[bytes | None] | None) -> list[bytes]:
    """The stored JSON of each event (see `event_json`), in bulk when every event came with its bytes."""
    if raw_lines is None:
        return [encode_event(event) for event in events]
    if None in raw_lines:
        return [event_json(event, raw) for event, raw in zip(events, raw_lines, strict=True)]
    lines: list[bytes] = list(map(bytes.strip, raw_lines))  # type: ignore[arg-type]
    return lines


def build_rows(
    cluster: str,
    events: Sequence[Event],
    raw_lines: Sequence[bytes | None] | None = None,
    *,
    received: datetime | None = None,
) -> Rows:
    """The hot-path rows for events of one cluster.

    `time` is requestReceivedTimestamp (the same for every stage of a request, so all stages land in the same
    day partition), else stageTimestamp, else `received`. Per event this only slices bytes, reads three fields
    and hashes the dedup key; everything else runs on whole Arrow arrays.
    """
    import pyarrow.compute as pc

    received = received or datetime.now(UTC)
    lines = _stored_lines(events, raw_lines)
    data = b"".join(lines)
    if _V1BETA1_MARK in data:
        lines = [
            line if _V1BETA1_MARK not in line else encode_event(event)
            for event, line in zip(events, lines, strict=True)
        ]
        data = b"".join(lines)
    lines, strings = valid_utf8(lines, data)
    blake = hashlib.blake2b
    prefix = f"{cluster}\x00"
    content_prefix = cluster.encode() + b"\x00\x00"
    digests = [
        blake(
            f"{prefix}{event.auditID}\x00{event.stage}".encode() if event.auditID else content_prefix + document,
            digest_size=8,
        ).digest()
        for event, document in zip(events, lines, strict=True)
    ]
    texts = [event.requestReceivedTimestamp or event.stageTimestamp or None for event in events]
    times = event_times(texts, received)
    return Rows(
        cluster=cluster,
        lines=lines,
        documents=strings,
        times=times,
        days=pc.cast(times, pa.date32()),
        key_values=key_array(digests),
    )
