"""Event times as Falco sees them: the stageTimestamp in nanoseconds, and its two printed forms."""

from __future__ import annotations

import re
import time
from calendar import timegm

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))?$"
)


def rfc3339_to_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 timestamp (fractions beyond 9 digits are cut)."""
    found = _RFC3339.match(text)
    if found is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second = (int(found.group(index)) for index in range(1, 7))
    seconds = timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if found.group(9):
        offset = (int(found.group(10)) * 60 + int(found.group(11))) * 60
        seconds += -offset if found.group(9) == "+" else offset
    fraction = (found.group(7) or "")[:9].ljust(9, "0")
    return seconds * 1_000_000_000 + int(fraction)


def clock_time(ns: int) -> str:
    """`HH:MM:SS.nnnnnnnnn` in UTC: the time Falco prints before an alert's priority."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    day_seconds = seconds % 86_400
    return f"{day_seconds // 3600:02d}:{day_seconds % 3600 // 60:02d}:{day_seconds % 60:02d}.{fraction:09d}"


def iso_time(ns: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`: the `time` of Falco's JSON alerts."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    moment = time.gmtime(seconds)
    return time.strftime("%Y-%m-%dT%H:%M:%S", moment) + f".{fraction:09d}Z"
