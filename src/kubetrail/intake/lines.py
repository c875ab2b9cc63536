"""Split a stream of byte chunks into numbered lines, in large blocks (the NDJSON hot path works on blocks)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

_BLANK_START = frozenset(b" \t\r\n\f\v")


def is_blank(line: bytes) -> bool:
    return not line or (line[0] in _BLANK_START and not line.strip())


def blocks(chunks: Iterable[bytes]) -> Iterator[tuple[int, list[bytes]]]:
    """(number of its first line, its whole lines) per chunk, split at `\\n`; the unterminated rest at the end.

    Chunks may be cut anywhere: a line spread over several is joined. Each chunk is split once and never copied
    whole, so a line costs one slice of the input.
    """
    number = 1
    pending: list[bytes] = []  # the start of a line that is not yet whole (in pieces: a long line is joined once)
    for chunk in chunks:
        if not chunk:
            continue
        parts = chunk.split(b"\n")
        if len(parts) == 1:
            pending.append(chunk)
            continue
        if pending:
            pending.append(parts[0])
            parts[0] = b"".join(pending)
        pending = [parts.pop()]
        yield number, parts
        number += len(parts)
    rest = b"".join(pending)
    if rest:
        yield number, [rest]


def lines(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for every line that is not blank."""
    for number, block in blocks(chunks):
        for offset, line in enumerate(block):
            if not is_blank(line):
                yield number + offset, line


def line_of_offset(data: bytes, offset: int) -> int:
    """The 1-based line holding byte `offset` of `data`."""
    return data.count(b"\n", 0, max(0, offset)) + 1
