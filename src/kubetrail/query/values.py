"""Parsing of durations (`30m`, `1h30m`, `7d`) and times (RFC 3339) as the filter and the CLI flags accept them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> timedelta | None:
    """`90s`, `30m`, `1h30m`, `7d`, `2w` → timedelta; None when `text` is not a duration."""
    match = _DURATION.match(text.strip().lower())
    if not match or not any(match.groups()):
        return None
    weeks, days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 / ISO 8601 time (a date alone is its midnight UTC); naive times are UTC. None if not a time."""
    candidate = text.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
