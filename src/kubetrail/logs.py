"""Logging that a hostile peer cannot turn into a flood: one line per kind of event per interval, with a count."""

from __future__ import annotations

import logging
import threading
import time

INTERVAL_SECONDS = 10.0
LEVELS = ("debug", "info", "warning", "error")
"""The `--log-level` choices of the long-running commands."""
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str) -> None:
    """Log records at `level` (one of LEVELS) and above to stderr, one line each with time, level and logger."""
    logging.basicConfig(level=getattr(logging, level.upper()), format=FORMAT)


class ThrottledLog:
    """Logs a kind of message at most once per INTERVAL_SECONDS; the next line says how many were held back."""

    def __init__(self, logger: logging.Logger, interval: float = INTERVAL_SECONDS) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def log(self, level: int, kind: str, message: str, *args: object) -> None:
        """Log `message % args` unless a message of this `kind` was logged within the interval."""
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(kind, -self.interval) < self.interval:
                self._held[kind] = self._held.get(kind, 0) + 1
                return
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        if held:
            message += f" (and {held} more like it in the last {self.interval:.0f} s)"
        self.logger.log(level, message, *args)

    def warning(self, kind: str, message: str, *args: object) -> None:
        self.log(logging.WARNING, kind, message, *args)
