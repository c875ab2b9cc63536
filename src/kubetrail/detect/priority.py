"""Falco's rule priorities, most severe first, with its spellings for parsing and for output."""

from __future__ import annotations

import enum


class Priority(enum.IntEnum):
    """A rule priority; a lower value is more severe (Falco's order)."""

    EMERGENCY = 0
    ALERT = 1
    CRITICAL = 2
    ERROR = 3
    WARNING = 4
    NOTICE = 5
    INFORMATIONAL = 6
    DEBUG = 7

    @property
    def label(self) -> str:
        """The name Falco prints in alerts: `Warning`, `Informational`, ..."""
        return self.name.capitalize()

    def at_least(self, other: Priority) -> bool:
        """True when this priority is as severe as `other` or more."""
        return self.value <= other.value

    @classmethod
    def parse(cls, text: str) -> Priority:
        """Parse a priority case-insensitively; `info` is accepted for INFORMATIONAL, as Falco does."""
        key = text.strip().upper()
        if key == "INFO":
            return cls.INFORMATIONAL
        try:
            return cls[key]
        except KeyError:
            raise ValueError(f"unknown priority {text!r}") from None


PRIORITY_NAMES = tuple(priority.name.lower() for priority in Priority)
