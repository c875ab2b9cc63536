"""Windows that fit the data: the time range a source holds, and what to tell someone whose window misses it.

An old log file or a store restored for an incident holds nothing "recent": a default window counted back from
now would show nothing. Commands then use the data's own range and say so; an explicit window that holds no event
while the data lies elsewhere gets a hint naming the data's range. The messages are pure functions of the span.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from kubetrail.query.source import Source, Window
from kubetrail.query.values import parse_duration, parse_time

RECENT = timedelta(hours=24)


@dataclass(frozen=True)
class Span:
    """The first and last event time a source holds (by requestReceivedTimestamp)."""

    first: datetime
    last: datetime

    def text(self) -> str:
        return f"{stamp(self.first)} to {stamp(self.last)}"


def stamp(moment: datetime) -> str:
    """A short UTC time for messages: `2026-03-19T10:00Z` (seconds when they matter)."""
    if moment.second or moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def resolve(text: str | None, now: datetime) -> datetime | None:
    """A --since/--until value as a time: a duration back from `now`, or an RFC 3339 time (None: not given)."""
    if not text:
        return None
    duration = parse_duration(text)
    return now - duration if duration is not None else parse_time(text)


def data_span(source: Source, cluster: str | None = None) -> Span | None:
    """The time range of every event the source holds (of one cluster), or None when it holds none."""
    clause, params = source.where("", Window(cluster=cluster))
    table = source.sql(f"SELECT min(time) AS first, max(time) AS last FROM {source.relation} WHERE {clause}", params)
    first, last = table.column("first")[0].as_py(), table.column("last")[0].as_py()
    return None if first is None or last is None else Span(first, last)


def events_in(source: Source, window: Window) -> int:
    """How many events fall in the window (whatever they are)."""
    clause, params = source.where("", window)
    table = source.sql(f"SELECT count(*) AS n FROM {source.relation} WHERE {clause}", params)
    return int(table.column("n")[0].as_py())


def default_note(span: Span | None, now: datetime, recent: timedelta = RECENT, *, tail: bool = False) -> str | None:
    """Without --since: a note when nothing is recent, so the data's own range is what is shown (with `tail`,
    the last `recent` of the data, as `new-identities` counts back from the newest event)."""
    if span is None or span.last >= now - recent:
        return None
    shown = Span(max(span.first, span.last - recent), span.last) if tail else span
    what = f"the data's last {_duration(recent)}" if tail else "the data's own range"
    return f"note: nothing in the last {_duration(recent)}; showing {what} {shown.text()}"


def empty_hint(since: datetime | None, until: datetime | None, span: Span | None) -> str | None:
    """For an explicit window that holds no event: where the data is instead (None when there is none at all)."""
    if span is None:
        return None
    start = f"since {stamp(since)}" if since else ""
    end = f"before {stamp(until)}" if until else ""
    asked = " and ".join(part for part in (start, end) if part) or "in the window"
    return f"hint: no event {asked}; the data spans {span.text()} (e.g. --since {stamp(span.first)})"


def _duration(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    return f"{hours // 24}d" if hours % 24 == 0 and hours >= 48 else f"{hours}h"
