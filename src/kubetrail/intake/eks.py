"""Amazon EKS audit logs, in every shape they leave CloudWatch Logs:

- an S3 export task (`aws logs create-export-task`): lines `<RFC 3339 time> <message>`, usually gzip;
- `aws logs filter-log-events` / `get-log-events` output: `{"events": [{"timestamp", "message", ...}]}`;
- a subscription delivery (`{"messageType": "DATA_MESSAGE", "logGroup", "logEvents": [...]}`), as Firehose
  writes it to S3 (several concatenated, gzip), as a Lambda receives it (`{"awslogs": {"data": base64(gzip)}}`),
  or as Amazon Data Firehose POSTs it to an HTTP endpoint (`{"requestId", "records": [{"data": base64}]}`, each
  record a gzip'd delivery, or the bare message when Firehose extracts it).

The message is the apiserver's own Event JSON and is kept byte for byte. The cluster comes from the log group
(`/aws/eks/<cluster>/cluster`). Messages that are not audit events (the authenticator's, the scheduler's, …)
are counted as skipped; `CONTROL_MESSAGE` deliveries (CloudWatch's reachability checks) carry no events.
"""

from __future__ import annotations

import base64
import binascii
import io
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from kubetrail.intake.batch import Batch, IntakeError
from kubetrail.intake.inflate import GzipError, InflateLimitError, gunzip, is_gzip
from kubetrail.intake.lines import lines
from kubetrail.intake.native import NotJsonError, add_item
from kubetrail.intake.sniff import EXPORT_LINE

_LOG_GROUP = re.compile(r"^/aws/eks/(?P<cluster>[^/]+)/cluster$")
NOT_AUDIT = "not an audit event (another control-plane log)"
MAX_RECORD_BYTES = 64 << 20
"""A delivered record inflates to at most this much (CloudWatch deliveries are at most 1 MB compressed)."""


def cluster_of(log_group: str) -> str | None:
    """`/aws/eks/prod/cluster` → `prod`."""
    match = _LOG_GROUP.match(log_group or "")
    return match["cluster"] if match else None


class _Batches:
    """Open batches per cluster; full ones are handed out as they fill."""

    def __init__(self) -> None:
        self.open: dict[str | None, Batch] = {}

    def get(self, cluster: str | None) -> Batch:
        batch = self.open.get(cluster)
        if batch is None:
            batch = self.open[cluster] = Batch(cluster=cluster)
        return batch

    def full(self) -> Iterator[Batch]:
        for cluster in [key for key, batch in self.open.items() if batch.full]:
            yield self.open.pop(cluster)

    def rest(self) -> Iterator[Batch]:
        for batch in self.open.values():
            if not batch.empty:
                yield batch
        self.open.clear()


def add_message(batch: Batch, message: bytes, source: str, line: int | None) -> None:
    """One CloudWatch log event's message: an audit Event, or another control-plane log (skipped)."""
    text = message.strip()
    if not text.startswith(b"{") or b'"auditID"' not in text:
        batch.skip(NOT_AUDIT)
        return
    add_item(batch, text, source, line)


def _one_document(data: bytes) -> list[tuple[int, Any]]:
    """The common case, one JSON document (a delivery, a Firehose record), decoded by msgspec; [] when the data
    is anything else (several documents, or not JSON), for `_documents` to sort out."""
    try:
        document = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return []
    return [(data[: len(data) - len(data.lstrip())].count(b"\n") + 1, document)]


def _documents(data: str) -> Iterator[tuple[int, Any]]:
    """Each JSON value in `data`, including values concatenated without separators (Firehose to S3)."""
    decoder = json.JSONDecoder()
    index = 0
    length = len(data)
    while True:
        while index < length and data[index].isspace():
            index += 1
        if index >= length:
            return
        start = index
        value, index = decoder.raw_decode(data, index)
        yield data.count("\n", 0, start) + 1, value


def _record_payload(
    record: Any, source: str, line: int, batches: _Batches, where: str, budget: int | None = None
) -> int:
    """A Firehose record's `data`: base64 of a (gzip'd) delivery, or of a bare message. Returns the bytes it
    inflated to; with a `budget` (what the whole request may still inflate to) going past it raises
    InflateLimitError instead of refusing the record alone."""
    data = record.get("data") if isinstance(record, dict) else None
    if not isinstance(data, str):
        batches.get(None).reject(source, line, f"{where}: a record without a base64 `data` string")
        return 0
    limit = MAX_RECORD_BYTES if budget is None else min(MAX_RECORD_BYTES, budget)
    try:
        payload = base64.b64decode(data, validate=True)
        if is_gzip(payload):
            payload = gunzip(payload, limit=limit, source=source)
        elif len(payload) > limit:
            raise InflateLimitError(f"the record is larger than {limit} bytes", source=source)
    except (binascii.Error, ValueError) as error:
        batches.get(None).reject(source, line, f"{where}: `data` is not base64: {error}", data[:4096].encode())
        return 0
    except InflateLimitError as error:
        if limit != MAX_RECORD_BYTES:
            raise
        batches.get(None).reject(source, line, f"{where}: {error.message}", data[:4096].encode())
        return 0
    except GzipError as error:
        batches.get(None).reject(source, line, f"{where}: {error.message}", data[:4096].encode())
        return 0
    text = payload.lstrip()
    if text.startswith(b"{") and b'"logEvents"' not in text[:4096] and b'"messageType"' not in text[:4096]:
        add_message(batches.get(None), text, source, line)
        return len(payload)
    _json_text(payload, source, batches, line, nested=True)
    return len(payload)


@dataclass(frozen=True)
class FirehoseRequest:
    """An Amazon Data Firehose HTTP endpoint delivery request: its id and time (to answer with), and its records
    decoded, a Batch per cluster named by the deliveries' log groups (None: none named)."""

    request_id: str
    timestamp: int | None
    batches: list[Batch]


def decode_firehose(body: bytes, *, source: str, max_bytes: int) -> FirehoseRequest:
    """The records of a Firehose delivery request body (`{"requestId", "timestamp", "records": [{"data"}]}`).

    Raises NotJsonError when the body is not JSON, IntakeError when it is not a delivery request, and
    InflateLimitError when its records inflate past `max_bytes` in all; a bad record is refused on its own.
    """
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise NotJsonError(f"not JSON: {error}", source=source) from None
    records = document.get("records") if isinstance(document, dict) else None
    request_id = document.get("requestId") if isinstance(document, dict) else None
    if not isinstance(records, list) or not isinstance(request_id, str):
        raise IntakeError(
            "not an Amazon Data Firehose delivery request",
            source=source,
            hint='expected {"requestId": "…", "timestamp": …, "records": [{"data": "<base64>"}]}',
        )
    stamp = document.get("timestamp")
    batches = _Batches()
    budget = max_bytes
    for index, record in enumerate(records):
        budget -= _record_payload(record, source, index + 1, batches, f"records[{index}]", budget)
    timestamp = stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None
    return FirehoseRequest(request_id, timestamp, list(batches.rest()))


def _document(document: Any, source: str, line: int, batches: _Batches, nested: bool = False) -> None:
    """One JSON document; `nested` inside a record, where only deliveries and messages belong (a record
    holding more records would let a small body inflate without bound)."""
    if isinstance(document, list):
        for item in document:
            _document(item, source, line, batches, nested)
        return
    if not isinstance(document, dict):
        batches.get(None).reject(source, line, "expected a CloudWatch Logs JSON object")
        return
    if document.get("messageType") == "CONTROL_MESSAGE":
        return
    if nested and ("awslogs" in document or "records" in document):
        batches.get(None).reject(source, line, "a record holding further records (deliveries do not nest)")
        return
    awslogs = document.get("awslogs")
    if isinstance(awslogs, dict):
        _record_payload(awslogs, source, line, batches, "awslogs")
        return
    records = document.get("records")
    if isinstance(records, list):
        for index, record in enumerate(records):
            _record_payload(record, source, line, batches, f"records[{index}]")
        return
    events = document.get("logEvents")
    if events is None:
        events = document.get("events")
    if events is None and "message" in document:
        events = [document]
    batch = batches.get(cluster_of(str(document.get("logGroup", ""))))
    if not isinstance(events, list):
        batch.reject(source, line, "no `logEvents` or `events` list", json.dumps(document)[:4096].encode())
        return
    for event in events:
        message = event.get("message") if isinstance(event, dict) else None
        if not isinstance(message, str):
            batch.reject(source, line, "a log event without a `message` string")
            continue
        add_message(batch, message.encode(), source, line)


def _json_text(data: bytes, source: str, batches: _Batches, line_offset: int = 0, nested: bool = False) -> None:
    try:
        documents = _one_document(data) or list(_documents(data.decode("utf-8")))
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        batches.get(None).reject(source, line_offset or None, f"not CloudWatch Logs JSON: {error}", data[:4096])
        return
    for line, document in documents:
        _document(document, source, line_offset or line, batches, nested)


def decode_eks(chunks: Iterable[bytes], source: str) -> Iterator[Batch]:
    """Batches of events from EKS audit logs in any of the shapes above (already inflated)."""
    numbered = lines(chunks)
    first = next(numbered, None)
    if first is None:
        return
    batches = _Batches()
    if not EXPORT_LINE.match(first[1]):
        data = io.BytesIO()
        data.write(first[1])
        last = first[0]
        for number, text in numbered:
            data.write(b"\n" * (number - last))
            data.write(text)
            last = number
        prefix = b"\n" * (first[0] - 1)
        _json_text(prefix + data.getvalue(), source, batches)
        yield from batches.rest()
        return
    batch = batches.get(None)
    for number, line in itertools.chain([first], numbered):
        if EXPORT_LINE.match(line):
            add_message(batch, line.split(b" ", 1)[1], source, number)
        else:
            batch.reject(source, number, "not a `<time> <message>` export line", line)
        if batch.full:
            yield batch
            batch = batches.open[None] = Batch()
    yield from batches.rest()
