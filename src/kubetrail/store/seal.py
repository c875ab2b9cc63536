"""Sealing: turn the rows of one WAL segment into Parquet files, one per `date=…/cluster=…/` partition.

The flat columns are derived in bulk by DuckDB (`columns.flat_select`, the SQL the tail view uses), without
copying the events' JSON through it: the rows are sorted on the narrow columns, and each row group is written
from a slice of that order, its JSON taken just then. Memory beyond the segment's own rows stays about one row
group's JSON (ROW_GROUP_ROWS events) plus DuckDB's working set, whatever the segment's size.

Files are written under a temporary name and fsynced; the caller records them in the manifest and only then
renames them into place, so a crash leaves either a temporary file (discarded) or a listed file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kubetrail.store.columns import FILE_SCHEMA, PLAIN_COLUMNS, TAIL_SCHEMA, flat_select
from kubetrail.store.layout import PARQUET_SUFFIX, TMP_SUFFIX, Layout, fsync_dir
from kubetrail.store.manifest import FileRecord, file_sha256
from kubetrail.store.views import flatten

ROW_GROUP_ROWS = 16_384
DICTIONARY_COLUMNS = [name for name in FILE_SCHEMA.names if name not in PLAIN_COLUMNS]
SORT_KEYS = [("date", "ascending"), ("cluster", "ascending"), ("time", "ascending"), ("stage_time", "ascending")]
_RELATION = "kubetrail_seal_rows"


@dataclass(frozen=True)
class PendingFile:
    """A written, fsynced file under its temporary name, and the record the manifest will hold for it."""

    temporary: Path
    final: Path
    record: FileRecord


def _iso(value: pa.Scalar) -> str:
    moment = value.as_py()
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment is not None else ""


def _writer(path: Path, compression_level: int) -> pq.ParquetWriter:
    return pq.ParquetWriter(
        path,
        FILE_SCHEMA,
        compression="zstd",
        compression_level=compression_level,
        use_dictionary=DICTIONARY_COLUMNS,
        write_statistics=True,
    )


def write_parquet(table: pa.Table, path: Path, *, compression_level: int = 3) -> None:
    """Write `table` (in FILE_SCHEMA) as one zstd Parquet file, fsynced."""
    with _writer(path, compression_level) as writer:
        writer.write_table(table.select(FILE_SCHEMA.names), row_group_size=ROW_GROUP_ROWS)
    _fsync(path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class SortedRows:
    """A segment's flat columns but `event`, sorted as sealed files are, and where each row came from."""

    narrow: pa.Table
    order: pa.Array
    events: pa.ChunkedArray

    def table(self, start: int = 0, length: int | None = None) -> pa.Table:
        """Rows `start…start+length` of the sorted segment in TAIL_SCHEMA, their JSON taken now."""
        length = self.narrow.num_rows - start if length is None else length
        narrow = self.narrow.slice(start, length)
        event = self.events.take(self.order.slice(start, length))
        columns = [event if name == "event" else narrow.column(name) for name in TAIL_SCHEMA.names]
        return pa.Table.from_arrays(columns, names=TAIL_SCHEMA.names).cast(TAIL_SCHEMA)


def sort_rows(rows: pa.Table) -> SortedRows:
    """Rows in ROW_SCHEMA → their flat columns (DuckDB, one thread, without the JSON), sorted by day, cluster,
    time and stage time (as `views.flatten`)."""
    connection = duckdb.connect(":memory:")
    try:
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute("SET threads = 1")
        connection.execute("SET preserve_insertion_order = true")
        connection.register(_RELATION, rows)
        narrow = connection.sql(flat_select(_RELATION, with_event=False)).to_arrow_table()
    finally:
        connection.close()
    if narrow.column("dedup_key").equals(rows.column("dedup_key")):
        order = pc.sort_indices(narrow.select([name for name, _ in SORT_KEYS]), sort_keys=SORT_KEYS)
        return SortedRows(narrow.take(order), order, rows.column("event"))
    flat = flatten(rows)  # not row for row in input order: the slower path that carries the JSON along
    return SortedRows(flat.drop_columns(["event"]), pa.array(range(flat.num_rows), pa.int64()), flat.column("event"))


def sealed_table(rows: pa.Table) -> pa.Table:
    """Rows in ROW_SCHEMA → TAIL_SCHEMA, sorted by day, cluster, time and stage time, as sealed files hold them."""
    return sort_rows(rows).table()


def partitions_of(table: pa.Table) -> list[tuple[str, str]]:
    """The distinct (YYYY-MM-DD, cluster) pairs of a tail table, sorted."""
    return [(day, cluster) for day, cluster, _ in _partition_runs(table)]


def _partition_runs(table: pa.Table) -> list[tuple[str, str, int]]:
    """(YYYY-MM-DD, cluster, rows) of each partition, in sorted order."""
    pairs = table.select(["date", "cluster"]).group_by(["date", "cluster"]).aggregate([([], "count_all")])
    runs = zip(
        pairs.column("date").to_pylist(),
        pairs.column("cluster").to_pylist(),
        pairs.column("count_all").to_pylist(),
        strict=True,
    )
    return sorted((day.isoformat(), cluster, count) for day, cluster, count in runs)


def write_segment(
    layout: Layout, segment_id: int, rows_table: pa.Table, *, compression_level: int = 3
) -> list[PendingFile]:
    """Write one file per partition for the rows of WAL segment `segment_id` (a table in ROW_SCHEMA)."""
    pending: list[PendingFile] = []
    ordered = sort_rows(rows_table)
    offset = 0
    try:
        for day, cluster, count in _partition_runs(ordered.narrow):  # sorted by day and cluster: one run each
            pending.append(
                _write_partition(layout, segment_id, ordered, day, cluster, offset, count, compression_level)
            )
            offset += count
    except BaseException:
        discard(pending)
        raise
    finally:
        del ordered
        pa.default_memory_pool().release_unused()  # hand the seal's buffers back rather than keep them cached
    return pending


def _write_partition(
    layout: Layout, segment_id: int, ordered: SortedRows, day: str, cluster: str, offset: int, count: int, level: int
) -> PendingFile:
    directory = layout.partition_dir(day, cluster)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = directory / f"seg-{segment_id:010d}{PARQUET_SUFFIX}"
    temporary = final.with_name(final.name + TMP_SUFFIX)
    try:
        with _writer(temporary, level) as writer:
            for start in range(offset, offset + count, ROW_GROUP_ROWS):
                group = ordered.table(start, min(ROW_GROUP_ROWS, offset + count - start))
                writer.write_table(group.select(FILE_SCHEMA.names))
        _fsync(temporary)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    bounds = pc.min_max(ordered.narrow.column("time").slice(offset, count))
    record = FileRecord(
        path=layout.relative(final),
        sha256=file_sha256(temporary),
        rows=count,
        bytes=temporary.stat().st_size,
        date=day,
        cluster=cluster,
        min_time=_iso(bounds["min"]),
        max_time=_iso(bounds["max"]),
    )
    return PendingFile(temporary=temporary, final=final, record=record)


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
