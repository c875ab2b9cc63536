"""Where things live inside a store directory; every other module asks here instead of joining paths."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

WAL_SUFFIX = ".wal"
PARQUET_SUFFIX = ".parquet"
TMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class Layout:
    """The paths of one store: `wal/`, `data/date=…/cluster=…/`, `manifest.jsonl`, `deadletter/`, lock files."""

    root: Path

    @property
    def wal_dir(self) -> Path:
        return self.root / "wal"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def deadletter_dir(self) -> Path:
        return self.root / "deadletter"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.jsonl"

    @property
    def writer_lock(self) -> Path:
        return self.root / "LOCK"

    @property
    def manifest_lock(self) -> Path:
        return self.root / "manifest.lock"

    def wal_segment(self, segment_id: int) -> Path:
        return self.wal_dir / f"{segment_id:010d}{WAL_SUFFIX}"

    def partition_dir(self, date: str, cluster: str) -> Path:
        return self.data_dir / f"date={date}" / f"cluster={cluster}"

    def relative(self, path: Path) -> str:
        """A path as the manifest records it: relative to the root, with forward slashes."""
        return path.relative_to(self.root).as_posix()

    def absolute(self, relative: str) -> Path:
        return self.root / relative

    def wal_segments(self) -> list[tuple[int, Path]]:
        """Existing WAL segments, oldest first."""
        if not self.wal_dir.is_dir():
            return []
        found: list[tuple[int, Path]] = []
        for entry in self.wal_dir.iterdir():
            if entry.suffix == WAL_SUFFIX and entry.stem.isdigit():
                found.append((int(entry.stem), entry))
        return sorted(found)

    def data_files(self) -> list[Path]:
        """Every sealed Parquet file on disk, whether or not the manifest knows it."""
        if not self.data_dir.is_dir():
            return []
        return sorted(self.data_dir.rglob(f"*{PARQUET_SUFFIX}"))

    def create(self) -> None:
        """Make the directories, private to the owner: audit data is sensitive."""
        for directory in (self.root, self.wal_dir, self.data_dir, self.deadletter_dir):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def fsync_dir(path: Path) -> None:
    """Make a directory entry (a created, renamed or removed file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
