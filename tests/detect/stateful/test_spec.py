"""The Python-level specs refuse settings that cannot work, before any event is seen."""

from __future__ import annotations

from typing import Any

import pytest

from kubetrail.detect.stateful import (
    FirstSeenSpec,
    SequenceSpec,
    SpecError,
    StatefulDetector,
    ThresholdSpec,
    ValueCountSpec,
    format_duration,
    parse_duration,
)


def _yes(ctx: object) -> bool:
    return True


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ThresholdSpec(name="t", match=_yes, window_s=0, count=5), "window must be positive"),
        (lambda: ThresholdSpec(name="t", match=_yes, window_s=60, count=0), "count must be at least 1"),
        (lambda: ThresholdSpec(name="", match=_yes, window_s=60, count=1), "needs a name"),
        (lambda: ThresholdSpec(name="t", match=_yes, window_s=60, count=1, max_keys=0), "max_keys"),
        (lambda: ValueCountSpec(name="v", match=_yes, field="ka.verb", window_s=60, count=0), "count must be"),
        (lambda: SequenceSpec(name="s", match=_yes, steps=(_yes,), within_s=60), "at least two steps"),
        (lambda: SequenceSpec(name="s", match=_yes, steps=(_yes, _yes), within_s=-1), "within must be positive"),
        (lambda: FirstSeenSpec(name="f", match=_yes, key=(), baseline_s=60), "at least one key field"),
        (lambda: FirstSeenSpec(name="f", match=_yes, key=("ka.verb",), baseline_s=60, learn_s=-1), "learn"),
    ],
)
def test_unusable_specs_are_refused(make: Any, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        make()


def test_unknown_fields_and_duplicate_names_are_refused_when_the_detector_is_built() -> None:
    with pytest.raises(SpecError, match=r"ka\.nope"):
        StatefulDetector([ThresholdSpec(name="t", match=_yes, group_by=("ka.nope",), window_s=60, count=1)])
    twice = [FirstSeenSpec(name="f", match=_yes, key=("ka.verb",), baseline_s=60)] * 2
    with pytest.raises(SpecError, match="two stateful rules are named 'f'"):
        StatefulDetector(twice)


def test_caller_accessors_name_their_own_fields() -> None:
    spec = FirstSeenSpec(
        name="f", match=_yes, key=("user.username",), baseline_s=60, accessors={"user.username": lambda ctx: "x"}
    )
    assert StatefulDetector([spec]).stats()["f"].keys == 0


@pytest.mark.parametrize("text", ["5x", "0m", "m", "-5m", "1.5h", "", "5 m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(SpecError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(("seconds", "text"), [(30, "30s"), (300, "5m"), (5400, "90m"), (86400, "1d"), (7200, "2h")])
def test_durations_print_in_their_largest_whole_unit(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text
