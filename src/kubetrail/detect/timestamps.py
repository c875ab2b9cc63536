"""Event times as Falco sees them: the stageTimestamp in nanoseconds, and its two printed forms."""

from __future__ import annotations

import re
import time
from calendar import timegm

from kubetrail.model import Event

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))?$"
)


_MINUTES: dict[str, int] = {}
_MINUTES_LIMIT = 4096


def rfc3339_to_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 timestamp (fractions beyond 9 digits are cut).

    The apiserver's MicroTime form (`2018-10-25T14:09:12.581541Z`) takes a fast path that
    remembers recent minutes.
    """
    if len(text) == 27 and text[16] == ":" and text[19] == "." and text[26] == "Z" and text[17] < "6":
        digits = text[17:19] + text[20:26]  # seconds and microseconds, read as one number
        if digits.isascii() and digits.isdigit():
            head = text[:16]
            minute = _MINUTES.get(head)
            if minute is None:
                if len(_MINUTES) >= _MINUTES_LIMIT:
                    _MINUTES.clear()
                minute = _MINUTES[head] = _parse(head + ":00Z") // 1_000_000_000
            return (minute * 1_000_000 + int(digits)) * 1000
    return _parse(text)


def _parse(text: str) -> int:
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


def event_time_ns(event: Event) -> int:
    """The event's time as Falco takes it: the stageTimestamp (else when the request was received), in ns since
    the epoch; 0 when it has neither."""
    stamp = event.stageTimestamp or event.requestReceivedTimestamp
    if not stamp:
        return 0
    try:
        return rfc3339_to_ns(stamp)
    except ValueError:
        return 0


def clock_time(ns: int) -> str:
    """`HH:MM:SS.nnnnnnnnn+0000`: Falco's `%evt.time` in UTC (the prefix without ISO 8601 time format)."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    day_seconds = seconds % 86_400
    return f"{day_seconds // 3600:02d}:{day_seconds % 3600 // 60:02d}:{day_seconds % 60:02d}.{fraction:09d}+0000"


def iso_offset_time(ns: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+0000`: Falco's `%evt.time.iso8601` in UTC (its container default prefix)."""
    return iso_time(ns)[:-1] + "+0000"


def iso_time(ns: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`: the `time` of Falco's JSON alerts."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    moment = time.gmtime(seconds)
    return (
        f"{moment.tm_year:04d}-{moment.tm_mon:02d}-{moment.tm_mday:02d}T"
        f"{moment.tm_hour:02d}:{moment.tm_min:02d}:{moment.tm_sec:02d}.{fraction:09d}Z"
    )
