"""MicroTime: the apiserver's timestamp with microsecond precision, always in UTC.

Timestamps stay strings inside events (exact round trip, no per-event parsing);
these helpers convert at the edges.
"""

from __future__ import annotations

from datetime import UTC, datetime

MICROTIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_microtime(moment: datetime) -> str:
    """Render a datetime in the apiserver's MicroTime wire format (`2026-03-19T10:30:00.050000Z`)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}Z"
    )


def parse_microtime(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (MicroTime or metav1.Time) into an aware UTC datetime.

    Digits beyond microseconds are truncated, as Go's MicroTime does; naive times are taken as UTC.
    """
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValueError(f"not an RFC 3339 timestamp: {text!r} (expected e.g. 2026-03-19T10:30:00.050000Z)") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def normalize_microtime(text: str) -> str:
    """Rewrite any RFC 3339 timestamp into the exact MicroTime wire format."""
    return format_microtime(parse_microtime(text))
