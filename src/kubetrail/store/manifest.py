"""The manifest: one JSON line per sealing or retention step, each chained to the previous by SHA-256.

Every sealed Parquet file is listed with its SHA-256, row count and size; a retention step lists the files it
removed. Changing, dropping or reordering any line breaks the chain; changing, removing or adding a data file
no longer matches the listed hashes (`verify.py`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import msgspec

from kubetrail.store.errors import StoreError
from kubetrail.store.layout import fsync_dir

GENESIS = "0" * 64


class FileRecord(msgspec.Struct, omit_defaults=True):
    """A sealed Parquet file as the manifest records it (path relative to the store root)."""

    path: str
    sha256: str
    rows: int
    bytes: int
    date: str = ""
    cluster: str = ""
    min_time: str = ""
    max_time: str = ""


class ManifestEntry(msgspec.Struct, omit_defaults=True):
    """One step in the chain: `seal` adds files (from WAL segments `wal`), `retention` removes them."""

    seq: int
    op: Literal["seal", "retention"]
    time: str
    prev: str
    files: list[FileRecord] = msgspec.field(default_factory=list)
    wal: list[int] = msgspec.field(default_factory=list)
    removed: list[FileRecord] = msgspec.field(default_factory=list)
    reason: str = ""
    hash: str = ""


_entry_decoder = msgspec.json.Decoder(ManifestEntry)


def entry_hash(entry: ManifestEntry) -> str:
    """SHA-256 over the entry's canonical JSON (sorted keys), without its own `hash` field."""
    body = msgspec.to_builtins(entry)
    body.pop("hash", None)
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@dataclass
class ParsedLine:
    """A manifest line and what is wrong with it, if anything (verify reports these)."""

    number: int
    entry: ManifestEntry | None
    problem: str = ""


def parse_lines(path: Path) -> tuple[list[ParsedLine], bool]:
    """Every line of the manifest; the flag says whether the last line is incomplete (a torn append)."""
    if not path.exists():
        return [], False
    data = path.read_bytes()
    torn = bool(data) and not data.endswith(b"\n")
    parsed: list[ParsedLine] = []
    lines = data.split(b"\n")
    if torn:
        lines = lines[:-1]
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            parsed.append(ParsedLine(number, _entry_decoder.decode(line)))
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            parsed.append(ParsedLine(number, None, f"unreadable manifest entry: {error}"))
    return parsed, torn


@dataclass
class ManifestState:
    """The live files a valid chain describes, and the files retention removed (with the entry that did it)."""

    live: dict[str, FileRecord] = field(default_factory=dict)
    retired: dict[str, int] = field(default_factory=dict)
    sealed_wal: set[int] = field(default_factory=set)
    head: str = GENESIS
    seq: int = 0

    def apply(self, entry: ManifestEntry) -> None:
        if entry.op == "seal":
            for record in entry.files:
                self.live[record.path] = record
                self.retired.pop(record.path, None)
            self.sealed_wal.update(entry.wal)
        else:
            for record in entry.removed:
                self.live.pop(record.path, None)
                self.retired[record.path] = entry.seq
        self.head = entry.hash
        self.seq = entry.seq

    def partition_files(self, date: str, cluster: str) -> list[FileRecord]:
        return [record for record in self.live.values() if record.date == date and record.cluster == cluster]

    def total_bytes(self) -> int:
        return sum(record.bytes for record in self.live.values())


class Manifest:
    """The manifest of a store opened for writing: loads (repairing a torn last line) and appends entries."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state = ManifestState()
        lines, torn = parse_lines(path)
        for line in lines:
            if line.entry is None:
                raise StoreError(
                    f"line {line.number}: {line.problem}", path=str(path), hint="run `kubetrail verify` to see why"
                )
            if line.entry.prev != self.state.head or entry_hash(line.entry) != line.entry.hash:
                raise StoreError(
                    f"line {line.number}: the hash chain is broken",
                    path=str(path),
                    hint="run `kubetrail verify --store DIR` to see which entry was altered",
                )
            self.state.apply(line.entry)
        if torn:
            self._drop_torn_tail()

    def _drop_torn_tail(self) -> None:
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        with open(self.path, "r+b") as handle:
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())

    def append(
        self,
        op: Literal["seal", "retention"],
        *,
        files: list[FileRecord] | None = None,
        wal: list[int] | None = None,
        removed: list[FileRecord] | None = None,
        reason: str = "",
    ) -> ManifestEntry:
        """Chain a new entry to the head and make it durable."""
        entry = ManifestEntry(
            seq=self.state.seq + 1,
            op=op,
            time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            prev=self.state.head,
            files=files or [],
            wal=wal or [],
            removed=removed or [],
            reason=reason,
        )
        entry.hash = entry_hash(entry)
        line = msgspec.json.encode(entry) + b"\n"
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.path.parent)
        self.state.apply(entry)
        return entry

    def entries(self) -> Iterator[ManifestEntry]:
        lines, _ = parse_lines(self.path)
        for line in lines:
            if line.entry is not None:
                yield line.entry
