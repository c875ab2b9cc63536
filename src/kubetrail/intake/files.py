"""The intake's edge with the file system: FILE arguments become ordered paths, each read through the intake.

Directories and globs of rotated logs are read oldest first. kube-apiserver's log backend rotates with
lumberjack (`audit.log` live, backups `audit-2006-01-02T15-04-05.000.log`, optionally `.gz`); logrotate names
them `audit.log.1`, `audit.log.2.gz`. Backups come first by their time (or by number, highest first), then
the live file. `-` is standard input.
"""

from __future__ import annotations

import contextlib
import glob
import io
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from kubetrail.intake.batch import Batch, IntakeError
from kubetrail.intake.inflate import is_gzip, open_gzip
from kubetrail.intake.read import read_head, read_stream
from kubetrail.intake.sniff import SNIFF_BYTES, Format, sniff
from kubetrail.model import Event

STDIN = "-"
_LUMBERJACK = re.compile(r"^(?P<stem>.+)-(?P<time>\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3})(?P<ext>\.[^.]+)?(\.gz)?$")
_NUMBERED = re.compile(r"^(?P<base>.+?)\.(?P<number>\d+)(\.gz)?$")
_GLOB_CHARS = frozenset("*?[")


def rotation_key(path: Path) -> tuple[str, int, str, int]:
    """Sort key: (the live file's name, 0 numbered / 1 timestamped / 2 live, backup time, -backup number)."""
    name = path.name
    stamped = _LUMBERJACK.match(name)
    if stamped:
        return (stamped["stem"] + (stamped["ext"] or ""), 1, stamped["time"], 0)
    numbered = _NUMBERED.match(name)
    if numbered:
        return (numbered["base"], 0, "", -int(numbered["number"]))
    base = name[:-3] if name.endswith(".gz") else name
    return (base, 2, "", 0)


def order_rotated(paths: Sequence[Path]) -> list[Path]:
    """Order a set of files so that each log's backups come oldest first, before its live file."""
    return sorted(paths, key=lambda path: (str(path.parent), *rotation_key(path)))


def expand_inputs(arguments: Sequence[str | Path]) -> list[Path]:
    """Files to read, in order: each argument is a file, a directory (its files), a glob, or `-` (stdin)."""
    result: list[Path] = []
    for argument in map(str, arguments):
        path = Path(argument)
        if argument == STDIN:
            result.append(path)
        elif path.is_dir():
            found = [item for item in path.iterdir() if item.is_file() and not item.name.startswith(".")]
            if not found:
                raise IntakeError("this directory holds no files", source=argument, hint="point at the audit logs")
            result.extend(order_rotated(found))
        elif _GLOB_CHARS & set(argument) and not path.exists():
            matches = [Path(item) for item in glob.glob(argument) if Path(item).is_file()]
            if not matches:
                raise IntakeError("no file matches this pattern", source=argument, hint="check the pattern")
            result.extend(order_rotated(matches))
        elif path.is_file():
            result.append(path)
        elif path.exists():
            raise IntakeError("not a regular file", source=argument, hint="pass audit log files or directories")
        else:
            raise IntakeError("no such file or directory", source=argument, hint="check the path")
    return result


def input_size(path: Path) -> int:
    """Bytes on disk (0 for stdin), for progress bars."""
    if str(path) == STDIN:
        return 0
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _open(path: Path) -> BinaryIO:
    if str(path) == STDIN:
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise IntakeError("no such file or directory", source=str(path), hint="check the path") from None
    except IsADirectoryError:
        raise IntakeError(
            "is a directory", source=str(path), hint="pass the files in it, or the directory itself"
        ) from None
    except PermissionError:
        raise IntakeError("permission denied", source=str(path), hint="run as a user that may read it") from None
    except OSError as error:
        raise IntakeError(error.strerror or str(error), source=str(path)) from None


@contextlib.contextmanager
def open_inflated(path: Path) -> Iterator[BinaryIO]:
    """A file's bytes, gzip inflated (told by its first bytes, not its name), for readers of raw lines."""
    handle = _open(path)
    try:
        head = handle.peek(2)[:2] if isinstance(handle, io.BufferedReader) else b""
        yield open_gzip(handle, source=str(path)) if is_gzip(head) else handle
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()


def peek(path: Path, size: int = SNIFF_BYTES) -> bytes:
    """The first `size` inflated bytes of a file (what the format is told from)."""
    with open_inflated(path) as stream:
        head, damage = read_head(stream, size)
    if damage is not None and not head:
        raise IntakeError(f"cannot read it: {damage.message}", source=str(path), hint="is the file complete?")
    return head


def format_of(path: Path) -> Format | None:
    """A file's format as the intake tells it, or None when it cannot."""
    return sniff(peek(path))


def read_path(path: Path, format: str | Format | None = None) -> Iterator[Batch]:
    """Batches of events of one file (or stdin); `position` is the bytes of the file read so far."""
    handle = _open(path)
    source = "stdin" if str(path) == STDIN else str(path)
    try:
        for batch in read_stream(handle, source=source, format=format):
            try:
                batch.position = handle.tell()
            except (OSError, ValueError):
                batch.position = 0
            yield batch
    except OSError as error:
        raise IntakeError(f"cannot read: {error.strerror or error}", source=source) from None
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()


def read_events(path: str | Path, format: str | Format | None = None) -> Iterator[Event]:
    """Every event of one file in order, for scripts that want all or nothing: the first refused record raises
    IntakeError naming its file, line and reason."""
    for batch in read_path(Path(path), format):
        if batch.rejected:
            first = batch.rejected[0]
            raise IntakeError(
                first.reason if first.line is None else f"line {first.line}: {first.reason}", source=first.source
            )
        yield from batch.events


def read_paths(paths: Sequence[Path], format: str | Format | None = None) -> Iterator[tuple[Path, Batch]]:
    """(path, batch) for every batch of every file, in order."""
    for path in paths:
        for batch in read_path(path, format):
            yield path, batch
