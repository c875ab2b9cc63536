"""Amazon EKS audit logs from CloudWatch Logs, in the shapes they leave CloudWatch:

- export to S3 (`aws logs create-export-task`): lines `<ISO-8601 time> <message>`, gzip;
- `aws logs filter-log-events` / `get-log-events` output: `{"events": [{"timestamp", "message", ...}]}`;
- subscription deliveries (Firehose, Lambda): `{"messageType": "DATA_MESSAGE", "logGroup", "logEvents": [...]}`,
  possibly several concatenated without separators.

The message is the apiserver's own Event JSON and is stored unchanged. The cluster comes from the log group
(`/aws/eks/<cluster>/cluster`). Messages that are not audit events (other control-plane logs) are skipped.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubetrail.collect.readers.base import ReadBatch, Rejected, open_input, short_reason
from kubetrail.model import EventDecodeError, decode_event
from kubetrail.model.codec import iter_lines

_EXPORT_LINE = re.compile(rb"^\d{4}-\d{2}-\d{2}T[0-9:.]+(Z|[+-]\d{2}:?\d{2}) ")
_LOG_GROUP = re.compile(r"^/aws/eks/(?P<cluster>[^/]+)/cluster$")
NOT_AUDIT = "not an audit event (another control-plane log)"


def cluster_of(log_group: str) -> str | None:
    """`/aws/eks/prod/cluster` → `prod`."""
    match = _LOG_GROUP.match(log_group or "")
    return match["cluster"] if match else None


def _message(message: bytes, source: str, line: int | None, batch: ReadBatch) -> None:
    text = message.strip()
    if not text.startswith(b"{") or b'"auditID"' not in text:
        batch.skip(NOT_AUDIT)
        return
    try:
        batch.add(decode_event(text, source=source, line=line), text)
    except EventDecodeError as error:
        batch.rejected.append(Rejected(source, line, short_reason(error.message), text))


def _documents(data: str) -> Iterator[tuple[int, Any]]:
    """Each JSON value in `data`, including values concatenated without separators (Firehose)."""
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


def _json_shapes(data: bytes, source: str) -> Iterator[ReadBatch]:
    try:
        documents = list(_documents(data.decode("utf-8")))
    except (ValueError, UnicodeDecodeError) as error:
        batch = ReadBatch()
        batch.rejected.append(Rejected(source, None, f"not CloudWatch Logs JSON: {error}", data[:4096]))
        yield batch
        return
    for line, document in documents:
        items = document if isinstance(document, list) else [document]
        for item in items:
            yield from _json_document(item, source, line)


def _json_document(document: Any, source: str, line: int) -> Iterator[ReadBatch]:
    if not isinstance(document, dict):
        batch = ReadBatch()
        batch.rejected.append(Rejected(source, line, "expected a CloudWatch Logs JSON object", b""))
        yield batch
        return
    if document.get("messageType") == "CONTROL_MESSAGE":
        return
    events = document.get("logEvents")
    if events is None:
        events = document.get("events")
    if events is None and "message" in document:
        events = [document]
    batch = ReadBatch(cluster=cluster_of(str(document.get("logGroup", ""))))
    if not isinstance(events, list):
        batch.rejected.append(Rejected(source, line, "no `logEvents` or `events` list", json.dumps(document).encode()))
        yield batch
        return
    for event in events:
        message = event.get("message") if isinstance(event, dict) else None
        if not isinstance(message, str):
            batch.rejected.append(Rejected(source, line, "log event without a `message` string", b""))
            continue
        _message(message.encode(), source, line, batch)
        if batch.full:
            yield batch
            batch = ReadBatch(cluster=batch.cluster)
    yield batch


def read_eks(path: Path) -> Iterator[ReadBatch]:
    """Batches of events from an EKS CloudWatch Logs export (any of the shapes above, plain or gzip)."""
    with open_input(path) as source:
        lines = iter_lines(source.stream)
        first = next(lines, None)
        if first is None:
            return
        if not _EXPORT_LINE.match(first[1]):
            rest = b"\n".join([first[1], *(text for _, text in lines)])
            for batch in _json_shapes(rest, source.source):
                batch.position = source.position
                yield batch
            return
        batch = ReadBatch()
        for number, line in itertools.chain([first], lines):
            if _EXPORT_LINE.match(line):
                _message(line.split(b" ", 1)[1], source.source, number, batch)
            else:
                batch.rejected.append(Rejected(source.source, number, "not a `<time> <message>` export line", line))
            if batch.full:
                batch.position = source.position
                yield batch
                batch = ReadBatch()
        batch.position = source.position
        yield batch
