"""Property tests: the bounded, incremental state agrees with brute force over the whole history."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kubetrail.detect.context import EventContext
from kubetrail.detect.stateful import SequenceSpec, StatefulDetector, ThresholdSpec, format_duration, parse_duration
from tests.detect.stateful.events import at

USERS = ("ann", "bob", "cid")
# (seconds since the previous event, user, kind): kind 0 is neither step, 1 is step A, 2 is step B.
STREAMS = st.lists(
    st.tuples(st.integers(0, 40), st.sampled_from(USERS), st.integers(0, 2)),
    max_size=60,
)


def _events(stream: list[tuple[int, str, int]]) -> list[tuple[int, str, int, EventContext]]:
    events = []
    now = 0
    for gap, user, kind in stream:
        now += gap
        verb = ("get", "create", "delete")[kind]
        events.append((now, user, kind, at(now, user=user, verb=verb)))
    return events


def _verb(ctx: EventContext) -> str:
    return ctx.event.verb


@settings(max_examples=60, deadline=None)
@given(STREAMS, st.integers(1, 5), st.integers(1, 120))
def test_threshold_matches_counting_every_event_in_the_window(
    stream: list[tuple[int, str, int]], count: int, window: int
) -> None:
    spec = ThresholdSpec(name="t", match=lambda ctx: True, group_by=("ka.user.name",), window_s=window, count=count)
    detector = StatefulDetector([spec])
    history: dict[str, list[int]] = {}
    muted: dict[str, int] = {}
    for index, (now, user, _, ctx) in enumerate(_events(stream)):
        times = history.setdefault(user, [])
        times.append(now)
        in_window = [time for time in times if now - window < time <= now]
        expected = len(in_window) >= count and now >= muted.get(user, -(10**9))
        if expected:
            muted[user] = now + window
        assert bool(detector.detect(ctx)) == expected, f"event {index} at {now}s by {user}"


@settings(max_examples=60, deadline=None)
@given(STREAMS, st.integers(1, 100))
def test_sequence_fires_when_an_a_since_the_last_alert_is_within_the_bound(
    stream: list[tuple[int, str, int]], within: int
) -> None:
    spec = SequenceSpec(
        name="a then b",
        match=lambda ctx: True,
        by=("ka.user.name",),
        steps=(lambda ctx: _verb(ctx) == "create", lambda ctx: _verb(ctx) == "delete"),
        within_s=within,
    )
    detector = StatefulDetector([spec])
    seen: list[tuple[int, str, int]] = []
    last_fire: dict[str, int] = {}
    for index, (now, user, kind, ctx) in enumerate(_events(stream)):
        expected = kind == 2 and any(
            other == user and step == 1 and position > last_fire.get(user, -1) and now - time <= within
            for position, (time, other, step) in enumerate(seen)
        )
        if expected:
            last_fire[user] = index
        seen.append((now, user, kind))
        assert bool(detector.detect(ctx)) == expected, f"event {index} at {now}s by {user}"


@given(st.integers(1, 10**6), st.sampled_from("smhd"))
def test_durations_read_back_as_written(number: int, unit: str) -> None:
    seconds = parse_duration(f"{number}{unit}")
    assert seconds == number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    assert parse_duration(format_duration(seconds)) == seconds
