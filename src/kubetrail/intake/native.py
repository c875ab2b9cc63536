"""Native audit events as kube-apiserver writes them: the log backend's NDJSON, webhook EventLists, JSON arrays.

Every item is decoded once into a typed Event and keeps the JSON it came from. A record that is not a valid
event becomes a Rejection naming its line (or item) and field; the rest of its batch is kept.
"""

from __future__ import annotations

import contextlib
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar

import msgspec

from kubetrail.intake.batch import BATCH_EVENTS, Batch, IntakeError
from kubetrail.intake.lines import blocks, is_blank, line_of_offset
from kubetrail.intake.split import allow_nesting, split_document
from kubetrail.model import EventDecodeError, decode_event
from kubetrail.model.event import API_VERSION_V1, SUPPORTED_EVENT_API_VERSIONS, Event

_DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError)
allow_nesting()  # events nest as deep as the apiserver accepts (intake.split.MAX_NESTING)
_event_decoder = msgspec.json.Decoder(Event)
_events_decoder = msgspec.json.Decoder(list[Event])
_api_version = operator.attrgetter("apiVersion")
_ONLY_V1 = frozenset({API_VERSION_V1})


class _Envelope(msgspec.Struct):
    """Just enough of a document to tell an EventList from an Event, with the list's items still raw JSON
    (split in the same pass that reads the envelope; each item is then decoded once, typed)."""

    kind: str = ""
    apiVersion: str = ""
    items: list[msgspec.Raw] = msgspec.field(default_factory=list)


_top_decoder = msgspec.json.Decoder(list[msgspec.Raw] | _Envelope)
_envelope_decoder = msgspec.json.Decoder(_Envelope)


class NotJsonError(IntakeError):
    """A whole document that is not JSON (the receiver answers 400; a file reports it as a rejection)."""

    def __init__(self, message: str, *, source: str = "", line: int | None = None) -> None:
        self.line = line
        super().__init__(message, source=source)


Repair = Callable[[bytes], bytes | None]
_repair: ContextVar[Repair | None] = ContextVar("kubetrail_intake_repair", default=None)


@contextlib.contextmanager
def repairing(repair: Repair) -> Iterator[None]:
    """Within the block, an item that is not a valid event is given to `repair` first: when it returns bytes,
    those are decoded instead (the original bytes stay the event's JSON). For readers that, like the
    apiserver's own decoder, accept events missing fields they do not use (`policy explain`)."""
    token = _repair.set(repair)
    try:
        yield
    finally:
        _repair.reset(token)


def _repaired(raw: bytes) -> Event | None:
    repair = _repair.get()
    fixed = repair(raw) if repair is not None else None
    if fixed is None:
        return None
    try:
        return decode_event(fixed)
    except EventDecodeError:
        return None


def _reason(raw: bytes, source: str, line: int | None) -> str:
    try:
        decode_event(raw, source=source, line=line)
    except EventDecodeError as error:
        return error.message
    return "not an audit event"


def add_item(
    batch: Batch, raw: bytes, source: str, line: int | None, where: str = "", limit: int | None = None
) -> None:
    """Decode one item that should be an Event; a failure (or more than `limit` bytes) becomes a rejection, prefixed
    with `where`."""
    if limit is not None and len(raw) > limit:
        reason = f"an event of {len(raw)} bytes is larger than the limit of {limit} bytes"
        batch.reject(source, line, f"{where}: {reason}" if where else reason, raw)
        return
    try:
        event = _event_decoder.decode(raw)
        if event.apiVersion != API_VERSION_V1:
            event = decode_event(raw, source=source, line=line)
    except _DECODE_ERRORS:
        repaired = _repaired(raw)
        if repaired is not None:
            batch.add(repaired, raw)
            return
        reason = _reason(raw, source, line)
        batch.reject(source, line, f"{where}: {reason}" if where else reason, raw)
        return
    except EventDecodeError as error:
        batch.reject(source, line, f"{where}: {error.message}" if where else error.message, raw)
        return
    batch.add(event, raw)


def add_items(
    batch: Batch, items: list[msgspec.Raw], source: str, line: int | None, where: str, limit: int | None
) -> None:
    """The hot loop over an EventList's items: one typed decode per item, location text only on failure."""
    decode = _event_decoder.decode
    events, raws = batch.events, batch.raws
    for index, item in enumerate(items):
        raw = bytes(item)
        if limit is not None and len(raw) > limit:
            add_item(batch, raw, source, line, f"{where}[{index}]", limit)
            continue
        try:
            event = decode(raw)
        except _DECODE_ERRORS:
            add_item(batch, raw, source, line, f"{where}[{index}]")
            continue
        if event.apiVersion != API_VERSION_V1:
            add_item(batch, raw, source, line, f"{where}[{index}]")
            continue
        events.append(event)
        raws.append(raw)


def _add_document(
    batch: Batch, raw: bytes, envelope: _Envelope | None, source: str, line: int | None, where: str, limit: int | None
) -> None:
    """An Event or an EventList (already probed when `envelope` is given)."""
    if envelope is None:
        try:
            envelope = _envelope_decoder.decode(raw)
        except _DECODE_ERRORS:
            add_item(batch, raw, source, line, where, limit)
            return
    if envelope.kind != "EventList":
        add_item(batch, raw, source, line, where, limit)
        return
    if envelope.apiVersion and envelope.apiVersion not in SUPPORTED_EVENT_API_VERSIONS:
        batch.reject(
            source, line, f"{where}: apiVersion {envelope.apiVersion!r} is not an audit event version - at "
            "`$.apiVersion`", raw
        )  # fmt: skip
        return
    if envelope.items:
        add_items(batch, envelope.items, source, line, f"{where} items".strip(), limit)


def add_document(
    batch: Batch, data: bytes, source: str, *, line: int | None = None, max_event_bytes: int | None = None
) -> None:
    """Every event of one JSON document: an Event, an EventList, or a JSON array of either.

    Raises NotJsonError when the document is not JSON at all; every other problem (an event larger than
    `max_event_bytes` among them) is a rejection of that one item in `batch`.
    """
    try:
        top = _top_decoder.decode(data)
    except RecursionError:
        _add_split(batch, data, source, line, max_event_bytes)
        return
    except msgspec.ValidationError as error:
        _probe_json(data, source, line)
        reason = str(error) if "$.items" in str(error) else _reason(data, source, line)
        batch.reject(source, line, f"not an audit Event or EventList: {reason}", data)
        return
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        raise NotJsonError(_not_json(data, error), source=source, line=_error_line(data, error, line)) from None
    if isinstance(top, list):
        for index, item in enumerate(top):
            raw = bytes(item)
            where = f"item {index}"
            if b'"EventList"' in raw:
                _add_document(batch, raw, None, source, line, where, max_event_bytes)
            else:
                add_item(batch, raw, source, line, where, max_event_bytes)
    else:
        _add_document(batch, data, top, source, line, "", max_event_bytes)


def _add_split(batch: Batch, data: bytes, source: str, line: int | None, limit: int | None) -> None:
    """A document nested too deeply to parse whole: split without recursion, then each item on its own."""
    split = split_document(data)
    if split is None:
        raise NotJsonError("not JSON, or JSON nested too deeply to read", source=source, line=line)
    if split.is_array:
        for index, raw in enumerate(split.items):
            add_item(batch, raw, source, line, f"item {index}", limit)
        return
    if split.kind != "EventList":
        add_item(batch, data, source, line, "", limit)
        return
    if split.api_version and split.api_version not in SUPPORTED_EVENT_API_VERSIONS:
        batch.reject(source, line, f"apiVersion {split.api_version!r} is not an audit event version", data[:4096])
        return
    add_items(batch, [msgspec.Raw(raw) for raw in split.items], source, line, "items", limit)


def _probe_json(data: bytes, source: str, line: int | None) -> None:
    try:
        msgspec.json.decode(data, type=msgspec.Raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as error:
        raise NotJsonError(_not_json(data, error), source=source, line=_error_line(data, error, line)) from None


def _not_json(data: bytes, error: Exception) -> str:
    if isinstance(error, RecursionError):
        return "JSON nested too deeply to decode safely"
    return f"not JSON: {error}"


def _error_line(data: bytes, error: Exception, line: int | None) -> int | None:
    if line is not None:
        return line
    text = str(error)
    marker = "(byte "
    cut = text.find(marker)
    if cut < 0 or b"\n" not in data:
        return None
    digits = text[cut + len(marker) :].split(")", 1)[0]
    return line_of_offset(data, int(digits)) if digits.isdigit() else None


def add_line(batch: Batch, line: bytes, source: str, number: int | None) -> None:
    """One NDJSON line: an Event (the log backend) or an EventList (a captured webhook body)."""
    if b'"EventList"' in line[:4096]:
        try:
            add_document(batch, line, source, line=number)
        except NotJsonError as error:
            batch.reject(source, number, error.message, line)
        return
    add_item(batch, line, source, number)


def _add_lines(batch: Batch, number: int, parts: list[bytes], source: str) -> None:
    """Whole NDJSON lines: decoded as one JSON array in a single call when every line is a plain v1 Event."""
    try:
        events = _events_decoder.decode(b"[" + b",".join(parts) + b"]")
    except _DECODE_ERRORS:
        events = None
    if events is not None and len(events) == len(parts) and set(map(_api_version, events)) == _ONLY_V1:
        batch.events.extend(events)
        batch.raws.extend(parts)
        return
    for offset, line in enumerate(parts):
        if not is_blank(line):
            add_line(batch, line, source, number + offset)


_FAST_LINES = 256
"""Lines decoded together on the fast path; a bad line costs a re-decode of at most this many."""


def _ndjson(first: tuple[int, list[bytes]], rest: Iterator[tuple[int, list[bytes]]], source: str) -> Iterator[Batch]:
    batch = Batch()
    for number, parts in itertools.chain([first], rest):
        start = 0
        while start < len(parts):
            room = BATCH_EVENTS - len(batch.events) - len(batch.rejected)
            take = max(1, min(_FAST_LINES, room))
            _add_lines(batch, number + start, parts[start : start + take], source)
            start += take
            if batch.full:
                yield batch
                batch = Batch()
    if not batch.empty:
        yield batch


def _whole(
    first_number: int, head: list[bytes], rest: Iterator[tuple[int, list[bytes]]], source: str
) -> Iterator[Batch]:
    """A document spread over lines (pretty-printed, or a JSON array): decoded whole, then batched."""
    data = b"\n".join(itertools.chain(head, *(block for _, block in rest)))
    batch = Batch()
    try:
        add_document(batch, data, source)
    except NotJsonError as error:
        line = None if error.line is None else error.line + first_number - 1
        batch.reject(source, line, error.message, data[:4096])
    for start in range(0, max(len(batch.events), 1), BATCH_EVENTS):
        part = Batch(events=batch.events[start : start + BATCH_EVENTS], raws=batch.raws[start : start + BATCH_EVENTS])
        if start == 0:
            part.rejected = batch.rejected
        if not part.empty:
            yield part


def _is_complete_json(line: bytes) -> bool:
    """True when a first line is a whole JSON value (NDJSON), False for the start of a pretty document."""
    try:
        msgspec.json.decode(line, type=msgspec.Raw)
    except msgspec.DecodeError as error:
        return "truncated" not in str(error)
    except RecursionError:
        return True
    return True


def decode_native(chunks: Iterable[bytes], source: str) -> Iterator[Batch]:
    """Batches of events from a native audit log's bytes (NDJSON, EventList lines, a JSON array, a document)."""
    stream = blocks(chunks)
    for number, block in stream:
        skipped = next((index for index, line in enumerate(block) if not is_blank(line)), len(block))
        if skipped == len(block):
            continue
        head = block[skipped:]
        first_line = head[0] = head[0].lstrip()
        if first_line.startswith(b"[") or not _is_complete_json(first_line):
            yield from _whole(number + skipped, head, stream, source)
        else:
            yield from _ndjson((number + skipped, head), stream, source)
        return
