"""Expand FILE arguments into an ordered list: directories and globs of rotated logs, oldest first.

kube-apiserver's log backend rotates with lumberjack: `audit.log` is the live file and backups are named
`audit-2006-01-02T15-04-05.000.log` (optionally `.gz`); logrotate names them `audit.log.1`, `audit.log.2.gz`.
Backups come first by their time (or by number, highest first), then the live file.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

from kubetrail.collect.readers.base import ReaderError

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


def order_rotated(paths: list[Path]) -> list[Path]:
    """Order a set of files so that each log's backups come oldest first, before its live file."""
    return sorted(paths, key=lambda path: (str(path.parent), *rotation_key(path)))


def expand_inputs(arguments: list[str]) -> list[Path]:
    """Files to read, in order: each argument is a file, a directory (its files) or a glob."""
    result: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = [item for item in path.iterdir() if item.is_file() and not item.name.startswith(".")]
            result.extend(order_rotated(found))
        elif _GLOB_CHARS & set(argument):
            matches = [Path(item) for item in glob.glob(argument) if Path(item).is_file()]
            if not matches:
                raise ReaderError("no file matches this pattern", source=argument)
            result.extend(order_rotated(matches))
        elif path.is_file():
            result.append(path)
        else:
            raise ReaderError("no such file or directory", source=argument, hint="check the path")
    return result
