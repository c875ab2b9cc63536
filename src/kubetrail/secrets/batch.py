"""Redaction of decoded batches before they are stored (`kubetrail ingest --redact`)."""

from __future__ import annotations

from collections.abc import MutableSequence

from kubetrail.model import Event, decode_event, encode_event
from kubetrail.secrets.files import redact_bytes


def redact_events(events: MutableSequence[Event], raws: MutableSequence[bytes | None], source: str = "") -> int:
    """Replace secrets in place in each event and its raw JSON (encoded from the event when absent).

    Returns how many values were redacted. An event keeps its identity (auditID, stage, times), so
    re-ingesting a redacted log dedups against the original.
    """
    total = 0
    for index, event in enumerate(events):
        raw = raws[index]
        data = raw if raw is not None else encode_event(event)
        redacted, findings = redact_bytes(data, source)
        if findings:
            events[index] = decode_event(redacted, source=source)
            raws[index] = redacted
            total += len(findings)
    return total
