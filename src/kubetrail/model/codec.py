"""Decode and encode audit events: one Event, one EventList document; encode events, EventLists and NDJSON.

Decoding parses each event once into typed structs (bodies kept as raw JSON); `v1beta1` events are accepted
and re-encoded as `v1`. Reading whole inputs (NDJSON, arrays, gzip, cloud exports) is the intake's job
(`kubetrail.intake`), which decodes every item through these functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import msgspec

from kubetrail.model.errors import EventDecodeError
from kubetrail.model.event import (
    API_VERSION_V1,
    SUPPORTED_EVENT_API_VERSIONS,
    Event,
    EventList,
)

_MISSING_KIND = "Object missing required field `kind`"
_BYTE_OFFSET = re.compile(r"\(byte (\d+)\)")

_document_decoder = msgspec.json.Decoder(Event | EventList)
_event_decoder = msgspec.json.Decoder(Event)
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
    if isinstance(error, RecursionError):
        return "JSON nested too deeply to decode (kube-apiserver itself accepts at most 10,000 levels)"
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
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError) as error:
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
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError) as error:
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
