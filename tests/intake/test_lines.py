"""Numbered lines from chunks cut anywhere: the same lines and numbers as splitting the whole input at once."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from kubetrail.intake.lines import blocks, lines

TEXT = st.lists(
    st.sampled_from([b'{"a":1}', b"", b"  ", b"\r", b'{"b":"x y"}\r', b"\t{}", b"z" * 70]), min_size=0, max_size=30
).map(b"\n".join)


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[start:end] for start, end in itertools.pairwise(points)]


def _numbered_whole(data: bytes) -> list[tuple[int, bytes]]:
    """What splitting the whole input gives: every line numbered from 1, blank ones left out, no empty last line."""
    found = list(enumerate(data.split(b"\n"), start=1))
    return [(number, line) for number, line in found if line.strip()]


@given(TEXT, st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_chunks_cut_anywhere_give_the_lines_of_the_whole(data: bytes, cuts: list[int]) -> None:
    assert list(lines(_cut(data, cuts))) == _numbered_whole(data)


@given(TEXT, st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_blocks_number_every_line_once_in_order(data: bytes, cuts: list[int]) -> None:
    numbered = [
        (number + offset, line) for number, block in blocks(_cut(data, cuts)) for offset, line in enumerate(block)
    ]
    expected = list(enumerate(data.split(b"\n"), start=1))
    if expected and expected[-1][1] == b"":
        expected.pop()  # a final newline ends the last line; it does not start another
    assert numbered == expected


def test_a_line_spread_over_many_chunks_is_joined_once_and_numbered_by_its_start() -> None:
    long_line = b"y" * 10_000
    data = b"first\n" + long_line + b"\nlast"
    chunks = [data[start : start + 7] for start in range(0, len(data), 7)]
    assert list(lines(chunks)) == [(1, b"first"), (2, long_line), (3, b"last")]


def test_empty_chunks_and_no_input_give_nothing() -> None:
    assert list(blocks([])) == []
    assert list(blocks([b"", b""])) == []
    assert list(lines([b"\n\n", b"  \n"])) == []
