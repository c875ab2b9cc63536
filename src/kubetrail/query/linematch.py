"""Which lines of a block of NDJSON hold a literal: decided in C++ by Arrow's RE2 kernels, a line at a time.

Python's byte searches read a block at 0.6 to 1.5 GB/s per literal, and counting its newlines costs as much again.
Split once into an Arrow array of lines (one copy), a block's lines are matched by RE2, which skips to the
literal's first byte with `memchr` and stops at a line's first match: several times faster when that byte is
rare in audit JSON (a backslash, a digit, most letters; not a quote). `rare_part` picks such a part of a literal,
a superset test that exact evaluation of the candidate lines then narrows.

`pyarrow._compute` is imported rather than `pyarrow.compute`, whose generated wrappers take as long to import
as the rest of Arrow.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import pyarrow as pa
from pyarrow import _compute as kernels

_METACHARACTERS = frozenset(b".+*?()[]{}|^$\\")
MIN_PART = 3
"""The shortest part of a literal worth searching for on its own."""


def split_lines(buffer: bytearray, end: int) -> pa.Array:
    """`buffer[:end]` cut at each newline, as a LargeBinary array owning its own copy of the bytes (the buffer is
    free to be refilled). A final newline leaves an empty last element."""
    offsets = pa.py_buffer(struct.pack("<qq", 0, end))
    block = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(buffer)])
    split = kernels.call_function("split_pattern", [block], kernels.SplitPatternOptions("\n"))
    return split.flatten()


def escaped(literal: bytes) -> str:
    """An ASCII literal as an RE2 pattern matching it as written."""
    return "".join("\\" + chr(byte) if byte in _METACHARACTERS else chr(byte) for byte in literal)


def pattern(literals: Sequence[bytes]) -> str:
    """An RE2 pattern matching any of the ASCII `literals` as written."""
    return "|".join(escaped(literal) for literal in literals)


def number_pattern(digits: bytes) -> str:
    """An RE2 pattern for a JSON number's digits not followed by another digit (`403` in `"code":403` but not in
    a timestamp's `.403123Z`): every way of writing the integer with its digits (`403`, `403.0`, `403e0`)."""
    return escaped(digits) + "(?:[^0-9]|$)"


def holding(lines: pa.Array, regex: str) -> pa.Array:
    """A boolean per line: whether it matches `regex` (see `pattern`)."""
    return kernels.call_function("match_substring_regex", [lines], kernels.MatchSubstringOptions(regex))


def either(first: pa.Array, second: pa.Array) -> pa.Array:
    """Element-wise OR of two boolean arrays."""
    return kernels.call_function("or", [first, second])


def indices(mask: pa.Array) -> list[int]:
    """The positions where a boolean array is true."""
    found: list[int] = kernels.call_function("indices_nonzero", [mask]).to_pylist()
    return found


def count_true(mask: pa.Array) -> int:
    """How many elements of a boolean array are true."""
    total = kernels.call_function("sum", [mask]).as_py()
    return int(total or 0)


def rare_part(literal: bytes, sample: bytes) -> bytes:
    """The end of `literal` from its byte rarest in `sample` (keeping at least MIN_PART bytes): a line holding the
    literal holds this part, and searching for it skips faster."""
    if len(literal) <= MIN_PART:
        return literal
    starts = range(len(literal) - MIN_PART + 1)
    best = min(starts, key=lambda index: (sample.count(literal[index : index + 1]), index))
    return literal[best:]
