"""Split a stream of byte chunks into numbered lines, in large blocks (the NDJSON hot path works on blocks)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

_BLANK_START = frozenset(b" \t\r\n\f\v")


def is_blank(line: bytes) -> bool:
    return not line or (line[0] in _BLANK_START and not line.strip())


def blocks(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """(number of its first line, whole lines without the final newline) per chunk; the rest at the end."""
    number = 1
    pending = b""
    for chunk in chunks:
        if not chunk:
            continue
        data = pending + chunk if pending else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            pending = data
            continue
        block, pending = data[:cut], data[cut + 1 :]
        yield number, block
        number += block.count(b"\n") + 1
    if pending:
        yield number, pending


def lines(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for every line that is not blank."""
    for number, block in blocks(chunks):
        for offset, line in enumerate(block.split(b"\n")):
            if not is_blank(line):
                yield number + offset, line


def line_of_offset(data: bytes, offset: int) -> int:
    """The 1-based line holding byte `offset` of `data`."""
    return data.count(b"\n", 0, max(0, offset)) + 1
