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
    return moment.strftime(MICROTIME_FORMAT)


def parse_microtime(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (MicroTime or metav1.Time) into an aware UTC datetime."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def normalize_microtime(text: str) -> str:
    """Rewrite any RFC 3339 timestamp into the exact MicroTime wire format."""
    return format_microtime(parse_microtime(text))
