"""DuckDB views over a store: `sealed` (the Parquet files), `tail` (acknowledged, not yet sealed) and `events`.

`events` is what queries use: every acknowledged event, once, with the same columns whether it has been sealed
or not (`date` and `cluster` come from the partition directories for sealed rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from kubetrail.store.columns import COLUMN_NAMES

_TAIL_RELATION = "kubetrail_tail"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(files: Sequence[Path], tail: pa.Table, *, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the `sealed`, `tail` and `events` views."""
    connection = duckdb.connect(":memory:")
    if threads is not None:
        connection.execute(f"SET threads = {int(threads)}")
    connection.register(_TAIL_RELATION, tail)
    columns = ", ".join(f'"{name}"' for name in COLUMN_NAMES)
    connection.execute(f"CREATE VIEW tail AS SELECT {columns} FROM {_TAIL_RELATION}")
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
