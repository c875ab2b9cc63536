"""Sigma wildcard matching agrees with a reference reading: shell-style `*` / `?` over the whole, case-folded value."""

from __future__ import annotations

import fnmatch

from hypothesis import given, settings
from hypothesis import strategies as st
from sigma.types import SigmaString

from kubetrail.detect.sigma.matchers import any_matcher, string_matcher

_PATTERN = st.text(alphabet="aB/%*?", max_size=8)
_TEXT = st.text(alphabet="abAB/%", max_size=10)


def _reference(pattern: str, text: str) -> bool:
    return fnmatch.fnmatchcase(text.lower(), pattern.lower())


@settings(max_examples=150, deadline=None)
@given(_PATTERN, _TEXT)
def test_one_pattern(pattern: str, text: str) -> None:
    assert string_matcher(SigmaString(pattern))(text) is _reference(pattern, text)


@settings(max_examples=150, deadline=None)
@given(st.lists(_PATTERN, min_size=1, max_size=6), _TEXT)
def test_any_of_several_patterns(patterns: list[str], text: str) -> None:
    matcher = any_matcher([SigmaString(pattern) for pattern in patterns])
    assert matcher(text) is any(_reference(pattern, text) for pattern in patterns)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ab/%", min_size=1, max_size=5), min_size=5, max_size=12), _TEXT)
def test_many_substrings(needles: list[str], text: str) -> None:
    matcher = any_matcher([SigmaString(f"*{needle}*") for needle in needles])
    assert matcher(text) is any(needle.lower() in text.lower() for needle in needles)
