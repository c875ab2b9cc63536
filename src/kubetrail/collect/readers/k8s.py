"""Native audit logs: the log backend's NDJSON (also EventList lines), a JSON array, or one pretty document.

Each line is decoded on its own, so a bad line is refused with its reason and the rest still loads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec

from kubetrail.collect.readers.base import Input, ReadBatch, Rejected, open_input
from kubetrail.model import EventDecodeError, decode_document, decode_event
from kubetrail.model.codec import iter_lines

_array = msgspec.json.Decoder(list[msgspec.Raw])


def _whole_document(source: Input, first: bytes, batch: ReadBatch) -> Iterator[ReadBatch]:
    data = first + source.stream.read()
    stripped = data.lstrip()
    if stripped.startswith(b"["):
        try:
            items = _array.decode(stripped)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            batch.rejected.append(Rejected(source.source, None, f"not a JSON array of events: {error}", data))
            yield batch
            return
        for index, item in enumerate(items):
            _decode_into(bytes(item), source.source, index + 1, batch)
            if batch.full:
                batch.position = source.position
                yield batch
                batch = ReadBatch()
    else:
        _decode_into(stripped, source.source, 1, batch, keep_raw=False)
    batch.position = source.position
    yield batch


def _decode_into(data: bytes, source: str, line: int, batch: ReadBatch, *, keep_raw: bool = True) -> None:
    try:
        event = decode_event(data, source=source, line=line)
    except EventDecodeError as error:
        first_error = error
    else:
        batch.add(event, data if keep_raw else None)
        return
    try:
        events = decode_document(data, source=source, line=line)
    except EventDecodeError as error:
        reason = error.message if b"EventList" in data[:4096] else first_error.message
        batch.rejected.append(Rejected(source, line, reason, data))
        return
    for item in events:
        batch.add(item, None)


def read_k8s(path: Path) -> Iterator[ReadBatch]:
    """Batches of events from a native audit log file (plain or gzip)."""
    with open_input(path) as source:
        lines = iter_lines(source.stream)
        first = next(lines, None)
        if first is None:
            return
        number, line = first
        batch = ReadBatch()
        start = line.lstrip()
        if start.startswith(b"[") or not _complete_json(start):
            rest = b"\n".join([line, *(text for _, text in lines)])
            yield from _whole_document(source, rest, batch)
            return
        _decode_into(line, source.source, number, batch)
        for number, line in lines:
            _decode_into(line, source.source, number, batch)
            if batch.full:
                batch.position = source.position
                yield batch
                batch = ReadBatch()
        batch.position = source.position
        if not batch.empty:
            yield batch


def _complete_json(line: bytes) -> bool:
    """True when the first line is a whole JSON value (NDJSON), False for the start of a pretty document."""
    try:
        msgspec.json.decode(line)
    except msgspec.DecodeError as error:
        return "truncated" not in str(error)
    return True
