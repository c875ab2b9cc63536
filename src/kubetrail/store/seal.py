"""Sealing: turn the rows of one WAL segment into Parquet files, one per `date=…/cluster=…/` partition.

Files are written under a temporary name and fsynced; the caller records them in the manifest and only then
renames them into place, so a crash leaves either a temporary file (discarded) or a listed file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kubetrail.store.columns import FILE_SCHEMA, PLAIN_COLUMNS
from kubetrail.store.layout import PARQUET_SUFFIX, TMP_SUFFIX, Layout, fsync_dir
from kubetrail.store.manifest import FileRecord, file_sha256
from kubetrail.store.views import flatten

ROW_GROUP_ROWS = 131_072
DICTIONARY_COLUMNS = [name for name in FILE_SCHEMA.names if name not in PLAIN_COLUMNS]


@dataclass(frozen=True)
class PendingFile:
    """A written, fsynced file under its temporary name, and the record the manifest will hold for it."""

    temporary: Path
    final: Path
    record: FileRecord


def _iso(value: pa.Scalar) -> str:
    moment = value.as_py()
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment is not None else ""


def write_parquet(table: pa.Table, path: Path, *, compression_level: int = 3) -> None:
    """Write `table` (in FILE_SCHEMA) as one zstd Parquet file, fsynced."""
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=compression_level,
        use_dictionary=DICTIONARY_COLUMNS,
        row_group_size=ROW_GROUP_ROWS,
        write_statistics=True,
    )
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def partitions_of(table: pa.Table) -> list[tuple[str, str]]:
    """The distinct (YYYY-MM-DD, cluster) pairs of a tail table, sorted."""
    pairs = table.select(["date", "cluster"]).group_by(["date", "cluster"]).aggregate([])
    dates = pairs.column("date").to_pylist()
    clusters = pairs.column("cluster").to_pylist()
    return sorted((day.isoformat(), cluster) for day, cluster in zip(dates, clusters, strict=True))


def write_segment(
    layout: Layout, segment_id: int, rows_table: pa.Table, *, compression_level: int = 3
) -> list[PendingFile]:
    """Write one file per partition for the rows of WAL segment `segment_id` (a table in ROW_SCHEMA)."""
    pending: list[PendingFile] = []
    table = flatten(rows_table)
    date_column = pc.cast(table.column("date"), pa.string())
    for day, cluster in partitions_of(table):
        mask = pc.and_(pc.equal(date_column, day), pc.equal(table.column("cluster"), cluster))
        rows = table.filter(mask).select(FILE_SCHEMA.names)
        directory = layout.partition_dir(day, cluster)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        final = directory / f"seg-{segment_id:010d}{PARQUET_SUFFIX}"
        temporary = final.with_name(final.name + TMP_SUFFIX)
        write_parquet(rows, temporary, compression_level=compression_level)
        bounds = pc.min_max(rows.column("time"))
        record = FileRecord(
            path=layout.relative(final),
            sha256=file_sha256(temporary),
            rows=rows.num_rows,
            bytes=temporary.stat().st_size,
            date=day,
            cluster=cluster,
            min_time=_iso(bounds["min"]),
            max_time=_iso(bounds["max"]),
        )
        pending.append(PendingFile(temporary=temporary, final=final, record=record))
    return pending


def publish(files: list[PendingFile]) -> None:
    """Rename written files into place (after the manifest lists them) and make the renames durable."""
    directories: set[Path] = set()
    for item in files:
        os.replace(item.temporary, item.final)
        directories.add(item.final.parent)
    for directory in directories:
        fsync_dir(directory)
        fsync_dir(directory.parent)
        fsync_dir(directory.parent.parent)


def discard(files: list[PendingFile]) -> None:
    """Remove temporary files of a seal that did not complete."""
    for item in files:
        item.temporary.unlink(missing_ok=True)
