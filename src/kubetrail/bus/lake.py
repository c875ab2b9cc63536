"""The shared lake: one store per worker under one directory, read together, verified together."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from kubetrail.bus.config import BusError
from kubetrail.store import Store
from kubetrail.store.columns import ROW_SCHEMA
from kubetrail.store.views import connect

WORKER_DIR = re.compile(r"^worker=([A-Za-z0-9][A-Za-z0-9._-]{0,63})$")


def worker_store_dir(lake: Path, worker_id: str) -> Path:
    """Where one worker keeps its store (created on first use)."""
    if not WORKER_DIR.match(f"worker={worker_id}"):
        raise BusError(f"invalid worker id {worker_id!r}", hint="letters, digits, '.', '_' or '-'")
    return Path(lake) / f"worker={worker_id}"


def worker_dirs(lake: Path) -> list[Path]:
    """Every worker's store in the lake, in name order."""
    if not Path(lake).is_dir():
        raise BusError(f"{lake}: no such lake directory")
    return sorted(path for path in Path(lake).iterdir() if path.is_dir() and WORKER_DIR.match(path.name))


@dataclass(frozen=True)
class LakeStats:
    workers: int
    sealed_files: int
    rows: int


def open_lake(lake: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose `events` view holds every worker's events once per (cluster, auditID, stage).

    A batch a worker stored but could not acknowledge before it died is redelivered and stored again, maybe by
    another worker: the view keeps the first copy, so queries see each event exactly once.
    """
    files: list[Path] = []
    tails: list[pa.Table] = []
    for directory in worker_dirs(lake):
        with Store.open(directory, read_only=True) as store:
            files.extend(store.sealed_files())
            tail = store.tail_rows()
            if tail.num_rows:
                tails.append(tail)
    tail = pa.concat_tables(tails) if tails else pa.Table.from_batches([], schema=ROW_SCHEMA)
    conn = connect(files, tail)
    conn.execute(
        "CREATE OR REPLACE VIEW events AS SELECT * FROM (SELECT * FROM sealed UNION ALL SELECT * FROM tail) "
        "QUALIFY row_number() OVER (PARTITION BY cluster, audit_id, stage ORDER BY time) = 1"
    )
    return conn
