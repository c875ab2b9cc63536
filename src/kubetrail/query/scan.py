"""Reading NDJSON audit logs in place like grep: a literal pre-filter, then decoding only candidate lines.

`scan_files` reads each file (gzip inflated by the intake) in large blocks of whole lines into one reused
buffer; files are read, not mapped, as a live log may be truncated under the scan. Each block is split into an
Arrow array of lines once, and its lines are matched in C++ (`linematch`) against the needles of one term of
the filter (`literals`) or a `\\u00` escape; only those lines are tested against the other terms, decoded
(msgspec) and evaluated exactly (`evaluate`). The events keep their lines' bytes, so they are printed as
written. A large plain file is cut at line starts into stretches scanned by forked processes at the same time.
Memory holds one block per process and the matching events, whatever the size of the files.

Lines that cannot match are not decoded. Each block is still checked for lines that are not audit events:
when one of its lines holds no `requestURI` key, its lines are decoded and checked one by one, and a file
holding a refused line is read once more through the intake for the report (`file:line: reason`).
Candidate lines an evaluator reads in a way it cannot be sure of (`evaluate.Unclear`) are handed back
as `unclear` for DuckDB to decide.
"""

from __future__ import annotations

import itertools
import os
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import msgspec

from kubetrail.intake import is_gzip, open_inflated
from kubetrail.query.evaluate import Predicate, Unclear, is_event, sort_key
from kubetrail.query.linematch import (
    count_true,
    either,
    escaped,
    holding,
    indices,
    number_pattern,
    pattern,
    rare_part,
    split_lines,
)
from kubetrail.query.literals import ESCAPE, Term, needed

BLOCK_BYTES = 16 * 1024 * 1024
PARALLEL_BYTES = 64 * 1024 * 1024
"""Plain files this large are scanned by several processes, each over its own stretch of lines."""
MAX_WORKERS = 4
_SAMPLE_BYTES = 4 * 1024 * 1024
_decode = msgspec.json.Decoder().decode
_SHAPE_PATTERN = pattern([b'requestURI":'])
_ESCAPE_PATTERN = pattern([ESCAPE])

SortKey = tuple[datetime | None, datetime | None, str | None]


@dataclass
class Scan:
    """What scanning some files found: the matching events (sort key and line), lines for DuckDB to decide,
    the files holding lines that are not audit events, and how many lines each file has."""

    matches: list[tuple[SortKey, bytes]] = field(default_factory=list)
    unclear: list[bytes] = field(default_factory=list)
    refused_files: list[Path] = field(default_factory=list)
    lines_of: dict[Path, int] = field(default_factory=dict)


@dataclass
class _Part:
    """What scanning one stretch of one file found."""

    matches: list[tuple[SortKey, bytes]] = field(default_factory=list)
    unclear: list[bytes] = field(default_factory=list)
    lines: int = 0
    refused: bool = False


def _blocks(stream: BinaryIO, size: int, limit: int | None = None) -> Iterator[tuple[bytearray, int]]:
    """(buffer, end): whole lines in `buffer[:end]` (each ending in a newline, but maybe the last one), from
    at most `limit` bytes of the stream."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    held = 0
    left = -1 if limit is None else limit
    readinto = getattr(stream, "readinto", None)
    while True:
        if held == len(buffer):  # one line longer than the buffer: grow it
            view.release()
            buffer.extend(bytes(len(buffer)))
            view = memoryview(buffer)
        room = len(buffer) - held if left < 0 else min(len(buffer) - held, left)
        if room == 0:
            got = 0
        elif readinto is not None:
            got = readinto(view[held : held + room])
        else:
            chunk = stream.read(room)
            got = len(chunk)
            view[held : held + got] = chunk
        if left >= 0:
            left -= got
        if not got:
            if held:
                yield buffer, held
            return
        filled = held + got
        cut = buffer.rfind(b"\n", 0, filled) + 1
        if cut == 0:
            held = filled
            continue
        yield buffer, cut
        held = filled - cut
        buffer[:held] = buffer[cut:filled]


class _Scanner:
    def __init__(self, driving: Term | None, others: list[Term], predicate: Predicate, searched: str | None) -> None:
        self.driving = driving
        self.others = others
        self.predicate = predicate
        self.searched = searched
        """The RE2 pattern a candidate line matches (see `search_pattern`); None: every line is a candidate."""
        self.part = _Part()

    def block(self, buffer: bytearray, end: int) -> None:
        lines = split_lines(buffer, end)
        count = len(lines) - (1 if buffer[end - 1] == 0x0A else 0) if end else 0
        self.part.lines += count
        if count_true(holding(lines, _SHAPE_PATTERN)) != count:
            self.check_shapes(bytes(buffer[:end]))
        if self.searched is None:
            candidates: Iterable[int] = range(count)
        else:
            candidates = indices(either(holding(lines, self.searched), holding(lines, _ESCAPE_PATTERN)))
        for index in candidates:
            line: bytes = lines[index].as_py()
            if not line or (self.others and not needed(line, self.others)):
                continue
            self.evaluate(line)

    def evaluate(self, line: bytes) -> None:
        try:
            event = _decode(line)
        except (msgspec.DecodeError, UnicodeDecodeError):
            if line.strip():
                self.part.unclear.append(line)
                self.part.refused = True
            return
        if not is_event(event):
            self.part.refused = True
            return
        try:
            if self.predicate(event):
                self.part.matches.append((sort_key(event), line))
        except Unclear:
            self.part.unclear.append(line)

    def check_shapes(self, block: bytes) -> None:
        """A block whose lines may not all be events: decode each line that is not blank."""
        if self.part.refused:
            return
        for line in block.split(b"\n"):
            if not line.strip():
                continue
            try:
                event = _decode(line)
            except (msgspec.DecodeError, UnicodeDecodeError):
                self.part.refused = True
                return
            if not is_event(event):
                self.part.refused = True
                return


def choose_term(terms: Sequence[Term], sample: bytes) -> tuple[Term | None, list[Term]]:
    """The term to search for over whole blocks (its needles the rarest in `sample`) and the others."""
    if not terms:
        return None, []
    ranked = sorted(terms, key=lambda term: (sum(sample.count(n) for n in term.needles), len(term.needles)))
    return ranked[0], ranked[1:]


def search_pattern(term: Term | None, sample: bytes) -> str | None:
    """The RE2 pattern of a term's needles: a string cut to its part that is rarest in `sample`, a number not
    followed by another digit (a line holding a needle matches it; exact evaluation decides)."""
    if term is None:
        return None
    parts = (
        number_pattern(needle) if needle.isdigit() else escaped(rare_part(needle, sample)) for needle in term.needles
    )
    return "|".join(dict.fromkeys(parts))


def _sample(path: Path) -> bytes:
    with open_inflated(path) as stream:
        return stream.read(_SAMPLE_BYTES)


def _line_start(path: Path, offset: int) -> int:
    """The offset of the first line starting at or after `offset` in a plain file."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        position = offset
        while chunk := handle.read(64 * 1024):
            newline = chunk.find(b"\n")
            if newline >= 0:
                return position + newline + 1
            position += len(chunk)
        return position


def _scan_stretch(path: Path, start: int, stop: int | None, scanner: _Scanner, block_bytes: int) -> _Part:
    """Scan bytes [start, stop) of a file (the whole inflated file when `stop` is None)."""
    if stop is None:
        with open_inflated(path) as stream:
            for buffer, end in _blocks(stream, block_bytes):
                scanner.block(buffer, end)
        return scanner.part
    with open(path, "rb", buffering=0) as handle:
        handle.seek(start)
        for buffer, end in _blocks(handle, block_bytes, limit=stop - start):
            scanner.block(buffer, end)
    return scanner.part


def _forked(work: Callable[[], _Part]) -> Callable[[], _Part | None]:
    """Run `work` in a child process now; the returned function collects its result (None if it failed)."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe and leaves at once
        status = 0
        try:
            os.close(reader)
            payload = pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:
            payload, status = pickle.dumps(None), 1
        with os.fdopen(writer, "wb") as out:
            out.write(payload)
        os._exit(status)
    os.close(writer)

    def collect() -> _Part | None:
        with os.fdopen(reader, "rb") as pipe:
            payload = pipe.read()
        os.waitpid(pid, 0)
        part = pickle.loads(payload) if payload else None
        return part if isinstance(part, _Part) else None

    return collect


def _scan_file(
    path: Path, make: Callable[[], _Scanner], block_bytes: int, workers: int, parallel_bytes: int
) -> list[_Part]:
    """A file's parts in order: a large plain file is cut at line starts into `workers` stretches, all but
    the first scanned by child processes at the same time."""
    size = path.stat().st_size if path.is_file() else 0
    if workers < 2 or size < parallel_bytes or not hasattr(os, "fork") or _gzip_on_disk(path):
        return [_scan_stretch(path, 0, None, make(), block_bytes)]
    cuts = sorted({0, *(_line_start(path, size * index // workers) for index in range(1, workers)), size})
    stretches = list(itertools.pairwise(cuts))
    children = [
        _forked(lambda start=start, stop=stop: _scan_stretch(path, start, stop, make(), block_bytes))  # type: ignore[misc]
        for start, stop in stretches[1:]
    ]
    first = _scan_stretch(path, *stretches[0], make(), block_bytes)
    parts = [first]
    for (start, stop), collect in zip(stretches[1:], children, strict=True):
        part = collect()
        parts.append(part if part is not None else _scan_stretch(path, start, stop, make(), block_bytes))
    return parts


def _gzip_on_disk(path: Path) -> bool:
    with open(path, "rb") as handle:
        return is_gzip(handle.read(2))


def scan_files(
    paths: Sequence[Path],
    terms: Sequence[Term],
    predicate: Predicate,
    *,
    block_bytes: int = BLOCK_BYTES,
    workers: int | None = None,
    parallel_bytes: int = PARALLEL_BYTES,
) -> Scan:
    """Scan NDJSON files (plain or gzip'd) for the lines matching `predicate`, pre-filtered by `terms`.

    Plain files of at least `parallel_bytes` are scanned by `workers` processes (default: one per CPU)."""
    result = Scan()
    if not paths:
        return result
    sample = _sample(paths[0])
    driving, others = choose_term(terms, sample)
    searched = search_pattern(driving, sample)
    count = workers if workers is not None else min(os.cpu_count() or 1, MAX_WORKERS)
    for path in paths:
        parts = _scan_file(
            path, lambda: _Scanner(driving, others, predicate, searched), block_bytes, count, parallel_bytes
        )
        result.lines_of[path] = sum(part.lines for part in parts)
        for part in parts:
            result.matches.extend(part.matches)
            result.unclear.extend(part.unclear)
        if any(part.refused for part in parts):
            result.refused_files.append(path)
    return result
