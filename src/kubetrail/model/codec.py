"""Decode and encode audit events: single Event, EventList, JSON arrays, NDJSON, gzip.

Decoding parses each event once into typed structs (bodies kept as raw JSON).
`v1beta1` events are accepted and re-encoded as `v1`.
"""

from __future__ import annotations

import gzip
import io
import operator
import re
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import msgspec

from kubetrail.model.errors import EventDecodeError
from kubetrail.model.event import (
    API_VERSION_V1,
    SUPPORTED_EVENT_API_VERSIONS,
    Event,
    EventList,
)

GZIP_MAGIC = b"\x1f\x8b"
_READ_CHUNK = 1 << 16
_MISSING_KIND = "Object missing required field `kind`"
_BYTE_OFFSET = re.compile(r"\(byte (\d+)\)")

_document_decoder = msgspec.json.Decoder(Event | EventList)
_event_decoder = msgspec.json.Decoder(Event)
_batch_decoder = msgspec.json.Decoder(list[Event])
_array_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_unknown_probe = msgspec.json.Decoder(dict[str, msgspec.Raw])
_encoder = msgspec.json.Encoder()

KNOWN_EVENT_KEYS = frozenset(Event.__struct_fields__) | {"kind"}
_V1BETA1_ONLY_KEYS = frozenset({"timestamp", "metadata"})


class LosslessEvent(msgspec.Struct, frozen=True):
    """An event plus the top-level fields the model does not know, kept verbatim."""

    event: Event
    unknown: dict[str, msgspec.Raw]


def _check_version(event: Event, source: str, line: int | None) -> Event:
    version = event.apiVersion
    if version == API_VERSION_V1:
        return event
    if version in SUPPORTED_EVENT_API_VERSIONS:
        event.apiVersion = API_VERSION_V1
        return event
    raise EventDecodeError(
        f"apiVersion {version!r} is not an audit event version (expected one of "
        f"{', '.join(SUPPORTED_EVENT_API_VERSIONS)}) - at `$.apiVersion`",
        source=source,
        line=line,
    )


def _describe(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        bad = error.object[error.start : error.start + 1].hex()
        return f"not valid UTF-8: a string holds the byte 0x{bad} (JSON text must be UTF-8)"
    text = str(error)
    if text.startswith("Invalid value 'Event") or "at `$.kind`" in text:
        return f"{text} (expected kind Event or EventList)"
    return text


def _line_of_error(data: bytes, error: Exception, line: int | None) -> int | None:
    """The line of a malformed document: given for NDJSON, else found from msgspec's byte offset."""
    if line is not None:
        return line
    found = _BYTE_OFFSET.search(str(error))
    if found is None or b"\n" not in data:
        return None
    return data.count(b"\n", 0, int(found.group(1))) + 1


def decode_document(data: bytes, *, source: str = "<input>", line: int | None = None) -> list[Event]:
    """Decode one JSON document that is an Event or an EventList (an object without `kind` is an Event)."""
    try:
        document = _document_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as error:
        if str(error) == _MISSING_KIND:
            return [decode_event(data, source=source, line=line)]
        raise EventDecodeError(_describe(error), source=source, line=_line_of_error(data, error, line)) from None
    if isinstance(document, Event):
        return [_check_version(document, source, line)]
    if document.apiVersion not in SUPPORTED_EVENT_API_VERSIONS:
        raise EventDecodeError(
            f"apiVersion {document.apiVersion!r} is not an audit event version - at `$.apiVersion`",
            source=source,
            line=line,
        )
    return [_check_version(item, source, line) for item in document.items]


def decode_event(data: bytes, *, source: str = "<input>", line: int | None = None) -> Event:
    """Decode exactly one Event."""
    try:
        event = _event_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as error:
        raise EventDecodeError(_describe(error), source=source, line=_line_of_error(data, error, line)) from None
    return _check_version(event, source, line)


def decode_event_lossless(data: bytes, *, source: str = "<input>") -> LosslessEvent:
    """Decode one Event and keep its unknown top-level fields for a faithful re-encode."""
    event = decode_event(data, source=source)
    fields = _unknown_probe.decode(data)
    unknown = {
        key: value for key, value in fields.items() if key not in KNOWN_EVENT_KEYS and key not in _V1BETA1_ONLY_KEYS
    }
    return LosslessEvent(event=event, unknown=unknown)


def encode_event(event: Event, unknown: dict[str, msgspec.Raw] | None = None) -> bytes:
    """Encode an event in the `v1` wire format, appending any preserved unknown fields."""
    data = _encoder.encode(event)
    if not unknown:
        return data
    extra = b",".join(_encoder.encode(key) + b":" + bytes(value) for key, value in unknown.items())
    return data[:-1] + b"," + extra + b"}"


def encode_event_list(events: Iterable[Event]) -> bytes:
    """Encode events as one `v1` EventList, the webhook backend's request body."""
    return _encoder.encode(EventList(apiVersion=API_VERSION_V1, items=list(events)))


def encode_ndjson(events: Iterable[Event]) -> bytes:
    """Encode events one per line, as the log backend's json format writes them."""
    buffer = bytearray()
    for event in events:
        _encoder.encode_into(event, buffer, -1)
        buffer += b"\n"
    return bytes(buffer)


def _decode_array(data: bytes, source: str) -> list[Event]:
    try:
        items = _array_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as error:
        raise EventDecodeError(_describe(error), source=source) from None
    events: list[Event] = []
    for index, item in enumerate(items):
        try:
            events.extend(decode_document(bytes(item), source=source))
        except EventDecodeError as error:
            raise EventDecodeError(f"item {index}: {error.message}", source=source) from None
    return events


def decode_events(data: bytes, *, source: str = "<input>") -> list[Event]:
    """Decode any accepted layout: gzip, a JSON array, NDJSON, or one (pretty-printed) document."""
    return list(iter_events(io.BytesIO(data), source=source))


def _open_binary(stream: BinaryIO) -> BinaryIO:
    head = stream.peek(2)[:2] if isinstance(stream, io.BufferedReader) else b""
    if not head and stream.seekable():
        position = stream.tell()
        head = stream.read(2)
        stream.seek(position)
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    return stream


def _read(stream: BinaryIO, source: str, line: int) -> bytes:
    """Read the next chunk; from gzip only what is decompressed so far, so lines before damage still decode."""
    try:
        if isinstance(stream, gzip.GzipFile):
            return stream.read1(_READ_CHUNK)
        return stream.read(_READ_CHUNK)
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise EventDecodeError(f"gzip data is truncated or corrupt ({error})", source=source, line=line) from None


_BLANK_START = frozenset(b" \t\r\n\f\v")
_ONLY_V1 = frozenset({API_VERSION_V1})
_api_version = operator.attrgetter("apiVersion")


def _blocks(stream: BinaryIO, source: str) -> Iterator[tuple[int, bytes]]:
    """Yield (number of its first line, a block of whole lines without its final newline) per read."""
    number = 1
    pending = b""
    while True:
        chunk = _read(stream, source, number)
        if not chunk:
            break
        data = pending + chunk if pending else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            pending = data
            continue
        block, pending = data[:cut], data[cut + 1 :]
        yield number, block
        number += block.count(b"\n") + 1
    if pending:
        yield number, pending


def _is_blank(line: bytes) -> bool:
    return not line or (line[0] in _BLANK_START and not line.strip())


def iter_lines(stream: BinaryIO, *, source: str = "<input>") -> Iterator[tuple[int, bytes]]:
    """Yield (line number, line) for each non-blank line, reading in large chunks."""
    for number, block in _blocks(stream, source):
        for offset, line in enumerate(block.split(b"\n")):
            if not _is_blank(line):
                yield number + offset, line


def _read_all(stream: BinaryIO, source: str, line: int) -> bytes:
    parts = []
    while chunk := _read(stream, source, line):
        parts.append(chunk)
    return b"".join(parts)


def _decode_whole(data: bytes, source: str, first_line: int) -> list[Event]:
    try:
        return decode_document(data, source=source)
    except EventDecodeError as error:
        if error.line is None or first_line == 1:
            raise
        raise EventDecodeError(error.message, source=source, line=error.line + first_line - 1) from None


def _decode_lines(number: int, lines: list[bytes], source: str) -> Iterator[Event]:
    """One line at a time: blank lines skipped, EventLists expanded, the first bad line reported."""
    decode = _event_decoder.decode
    for offset, line in enumerate(lines):
        try:
            event = decode(line)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
            if not _is_blank(line):
                yield from decode_document(line, source=source, line=number + offset)
            continue
        if event.apiVersion != API_VERSION_V1:
            _check_version(event, source, number + offset)
        yield event


def _decode_ndjson(stream: BinaryIO, number: int, pending: bytes, source: str) -> Iterator[Event]:
    """The hot path: each read's whole lines decoded as one JSON array of v1 events in a single call.

    `number` is the line `pending` (a partial line already read) starts on. A block with anything
    unusual (a blank line, an EventList, another apiVersion, a malformed event) goes through the
    line-by-line decoder instead, which keeps exact line numbers.
    """
    decode = _batch_decoder.decode
    while chunk := _read(stream, source, number):
        data = pending + chunk if pending else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            pending = data
            continue
        block, pending = data[:cut], data[cut + 1 :]
        count = block.count(b"\n") + 1
        try:
            events = decode(b"[" + block.replace(b"\n", b",") + b"]")
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
            events = None
        if events is None or len(events) != count or set(map(_api_version, events)) != _ONLY_V1:
            yield from _decode_lines(number, block.split(b"\n"), source)
        else:
            yield from events
        number += count
    if pending:
        yield from _decode_lines(number, [pending], source)


def iter_events(stream: BinaryIO, *, source: str = "<input>") -> Iterator[Event]:
    """Stream events from a binary stream in any accepted layout (gzip detected by magic)."""
    stream = _open_binary(stream)
    number, pending = 1, b""
    while True:
        chunk = _read(stream, source, number)
        data = pending + chunk
        cut = data.rfind(b"\n") if chunk else len(data)
        if cut < 0:
            pending = data
            continue
        block, pending = data[:cut], data[cut + 1 :]
        lines = block.split(b"\n")
        for offset, line in enumerate(lines):
            if _is_blank(line):
                continue
            start = line.lstrip()[:1]
            whole = start in (b"[", b"{") and line.rstrip()[-1:] not in (b"]", b"}")
            if not whole:
                try:
                    first = (
                        _decode_array(line, source)
                        if start == b"["
                        else decode_document(line, source=source, line=number + offset)
                    )
                except EventDecodeError as error:
                    if "truncated" not in error.message:
                        raise
                    whole = True
            if whole:
                rest = b"\n".join([*lines[offset:], pending]) + _read_all(stream, source, number)
                if start == b"[":
                    yield from _decode_array(rest, source)
                else:
                    yield from _decode_whole(rest, source, number + offset)
                return
            yield from first
            yield from _decode_lines(number + offset + 1, lines[offset + 1 :], source)
            if chunk:
                yield from _decode_ndjson(stream, number + len(lines), pending, source)
            return
        if not chunk:
            return
        number += len(lines)


def read_events(path: str | Path) -> Iterator[Event]:
    """Stream events from a file: NDJSON, an EventList, a JSON array or gzip of any of them."""
    name = str(path)
    with open(path, "rb") as handle:
        yield from iter_events(handle, source=name)
