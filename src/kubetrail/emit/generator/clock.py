"""Simulated time: integer microseconds since the stream's start, rendered in the apiserver's formats."""

from __future__ import annotations

from datetime import datetime, timedelta

from kubetrail.model.microtime import format_microtime

SECOND = 1_000_000


class Clock:
    """Renders offsets (µs from `start`) as MicroTime and RFC 3339 strings, caching per second."""

    def __init__(self, start: datetime) -> None:
        self.start = start.replace(microsecond=0)
        self._base_us = start.microsecond
        self._prefixes: dict[int, str] = {}
        self._last_second = 0
        self._last_prefix = self._seconds_prefix(0)

    def _seconds_prefix(self, second: int) -> str:
        prefix = self._prefixes.get(second)
        if prefix is None:
            if len(self._prefixes) > 4096:
                self._prefixes.clear()
            prefix = format_microtime(self.start + timedelta(seconds=second))[:-8]  # drop ".000000Z"
            self._prefixes[second] = prefix
        return prefix

    def micro(self, offset_us: int) -> str:
        """MicroTime (`2026-03-19T10:30:00.050000Z`), as in requestReceivedTimestamp and stageTimestamp."""
        second, micros = divmod(offset_us + self._base_us, SECOND)
        if second != self._last_second:
            self._last_second = second
            self._last_prefix = self._seconds_prefix(second)
        return f"{self._last_prefix}.{micros:06d}Z"

    def seconds(self, offset_us: int) -> str:
        """metav1.Time (`2026-03-19T10:30:00Z`), as object bodies carry it."""
        second = (offset_us + self._base_us) // SECOND
        return self._seconds_prefix(second) + "Z"
