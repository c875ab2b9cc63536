"""DuckDB over a store: `sealed` (the Parquet files), `tail` (acknowledged, not yet sealed) and `events` (both).

`events` is what queries use: every acknowledged event, once, with the same columns whether it has been sealed
or not (`date` and `cluster` come from the partition directories for sealed rows). The tail's flat columns are
derived from the JSON by the same SQL that sealing uses (`columns.flat_select`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from kubetrail.store.columns import COLUMN_NAMES, TAIL_SCHEMA, flat_select

_TAIL_RELATION = "kubetrail_tail_rows"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _connection(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(":memory:")
    connection.execute("SET TimeZone = 'UTC'")
    if threads is not None:
        connection.execute(f"SET threads = {int(threads)}")
    return connection


def flatten(rows: pa.Table, *, threads: int | None = None) -> pa.Table:
    """Rows in ROW_SCHEMA → TAIL_SCHEMA, sorted by day, cluster and time (how sealed files are laid out).

    The sort runs in Arrow on the key columns only; sorting the wide rows in SQL is several times slower.
    """
    import pyarrow.compute as pc  # loaded when sealing; a read-only query never needs it

    connection = _connection(threads)
    try:
        connection.register(_TAIL_RELATION, rows)
        result = connection.sql(flat_select(_TAIL_RELATION)).to_arrow_table()
    finally:
        connection.close()
    order = pc.sort_indices(
        result.select(["date", "cluster", "time", "stage_time"]),
        sort_keys=[("date", "ascending"), ("cluster", "ascending"), ("time", "ascending"), ("stage_time", "ascending")],
    )
    return result.take(order).cast(TAIL_SCHEMA)


def connect(files: Sequence[Path], tail: pa.Table, *, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the `sealed`, `tail` and `events` views (`tail` is in ROW_SCHEMA)."""
    connection = _connection(threads)
    connection.register(_TAIL_RELATION, tail)
    columns = ", ".join(f'"{name}"' for name in COLUMN_NAMES)
    connection.execute(f"CREATE VIEW tail AS SELECT {columns} FROM ({flat_select(_TAIL_RELATION)})")
    if files:
        listing = ", ".join(_literal(str(path)) for path in files)
        connection.execute(
            f"CREATE VIEW sealed AS SELECT {columns} FROM read_parquet([{listing}], hive_partitioning = true, "
            "hive_types = {'date': DATE, 'cluster': VARCHAR})"
        )
    else:
        connection.execute(f"CREATE VIEW sealed AS SELECT {columns} FROM tail WHERE false")
    connection.execute("CREATE VIEW events AS SELECT * FROM sealed UNION ALL SELECT * FROM tail")
    return connection
