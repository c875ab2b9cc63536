"""One long-lived DuckDB database over a store for the UI, refreshed at most every few seconds.

Opening the store's views costs tens of milliseconds (Parquet footers, the tail's JSON), so the UI keeps them
open and rebuilds them only when the store changed. It also keeps a pre-aggregation, `agg`: per sealed file,
event counts by minute, cluster, user, verb and resource (about one row per 16 events), computed once per file
because sealed files never change. The overview reads `agg` plus the small unsealed tail, never the events.
`agg` is derived from a finer pre-aggregation, `facts`: per file, events and completed requests with their first
and last time by minute and every FACT_KEYS column (about one row per 9 events); a search or an identity whose
filter names only those columns gets its count, histogram, facets and profile from it, exactly. `objects` counts
each object's (resource, namespace, name) events per file and minute, so that an object's history is read from
the minutes that hold it only.

Tables and views: `sealed`, `sealed_rows` (`sealed` plus each event's file and row number, to read a few
events without decompressing their neighbours), `tail_flat` (the tail's flat columns, materialised),
`events` (both), `agg_all`, `facts_all` and `objects_all` (the pre-aggregations plus the tail's), `bounds`
(the first and last event time, from per-file bounds kept beside `agg`) and `alerts_t` (the store's alerts,
materialised).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from kubetrail.store import Store
from kubetrail.store.columns import COLUMN_NAMES, flat_select
from kubetrail.store.views import flatten

DEFAULT_MAX_AGE = 2.0
FACT_KEYS = (
    "cluster",
    "user",
    "impersonated_user",
    "verb",
    "resource",
    "subresource",
    "namespace",
    "response_code",
    "user_agent",
    "source_ip",
)
"""The event columns `facts` is grouped by (with the minute): a filter over these alone is answered from it."""
_FACT_COLUMNS = ", ".join(f'"{name}"' for name in FACT_KEYS)
_FACT_SELECT = (
    f"time_bucket(INTERVAL 1 MINUTE, time) AS _minute, {_FACT_COLUMNS}, count(*) AS _n, "
    "count(*) FILTER (WHERE stage IS NULL OR stage NOT IN ('RequestReceived', 'ResponseStarted')) AS _requests, "
    "min(time) AS _first, max(time) AS _last"
)
_OBJECT_SELECT = (
    "time_bucket(INTERVAL 1 MINUTE, time) AS _minute, resource, subresource, namespace, name, count(*) AS _n, "
    "min(time) AS _first, max(time) AS _last"
)
_AGG_FROM_FACTS = '_minute, cluster, "user", verb, resource, sum(_n), sum(_n) FILTER (WHERE response_code = 403)'
_AGG_SELECT = (
    'time_bucket(INTERVAL 1 MINUTE, time) AS minute, cluster, "user", verb, resource, count(*) AS n, '
    "count(*) FILTER (WHERE response_code = 403) AS forbidden"
)
_EMPTY_ALERTS = (
    "SELECT NULL::TIMESTAMP AS time, NULL::VARCHAR AS rule, NULL::VARCHAR AS priority, NULL::INTEGER AS "
    "priority_rank, NULL::VARCHAR AS cluster, NULL::VARCHAR AS audit_id, NULL::VARCHAR AS message, "
    "NULL::JSON AS output_fields, NULL::VARCHAR[] AS tags, NULL::VARCHAR[] AS mitre WHERE false"
)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _parquet(files: list[Path], *, located: bool = False) -> str:
    listing = ", ".join(_literal(str(path)) for path in files)
    extra = ", filename = true, file_row_number = true" if located else ""
    return (
        f"read_parquet([{listing}], hive_partitioning = true, hive_types = {{'date': DATE, 'cluster': VARCHAR}}{extra})"
    )


def rows_of(file: str, rows: Sequence[int], columns: str) -> str:
    """SQL reading `columns` (and `file_row_number`) of some rows of one sealed file; DuckDB skips other pages."""
    listing = ", ".join(str(int(row)) for row in rows)
    return (
        f"SELECT {columns}, file_row_number FROM {_parquet([Path(file)], located=True)} "
        f"WHERE file_row_number IN ({listing})"
    )


class StoreSnapshot:
    """The UI's view of a store: `cursor()` gives a connection no older than `max_age` seconds."""

    def __init__(self, store: Store, *, max_age: float = DEFAULT_MAX_AGE) -> None:
        self.store = store
        self.store_dir = store.layout.root
        self.max_age = max_age
        self.generation = 0
        self.newest: datetime | None = None
        self._db = duckdb.connect(":memory:")
        self._db.execute("SET TimeZone = 'UTC'")
        self._db.execute(
            'CREATE TABLE agg (file VARCHAR, minute TIMESTAMPTZ, cluster VARCHAR, "user" VARCHAR, verb VARCHAR, '
            "resource VARCHAR, n BIGINT, forbidden BIGINT)"
        )
        self._db.execute("CREATE TABLE file_times (file VARCHAR, first TIMESTAMPTZ, last TIMESTAMPTZ)")
        self._db.execute(
            'CREATE TABLE facts (file VARCHAR, _minute TIMESTAMPTZ, cluster VARCHAR, "user" VARCHAR, '
            "impersonated_user VARCHAR, verb VARCHAR, resource VARCHAR, subresource VARCHAR, namespace VARCHAR, "
            "response_code INTEGER, user_agent VARCHAR, source_ip VARCHAR, _n BIGINT, _requests BIGINT, "
            "_first TIMESTAMPTZ, _last TIMESTAMPTZ)"
        )
        self._db.execute(
            "CREATE TABLE objects (file VARCHAR, _minute TIMESTAMPTZ, resource VARCHAR, subresource VARCHAR, "
            "namespace VARCHAR, name VARCHAR, _n BIGINT, _first TIMESTAMPTZ, _last TIMESTAMPTZ)"
        )
        self._files: list[Path] = []
        self._tail_rows = -1
        self._key: tuple[object, ...] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own (close it after use) over the current snapshot."""
        with self._lock:
            if self._key is None or time.monotonic() - self._checked >= self.max_age:
                self._refresh()
            return self._db.cursor()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _alert_key(self) -> tuple[tuple[str, int, int], ...]:
        directory = self.store_dir / "alerts"
        if not directory.is_dir():
            return ()
        stats = [(path.name, path.stat()) for path in sorted(directory.glob("*.jsonl"))]
        return tuple((name, stat.st_size, stat.st_mtime_ns) for name, stat in stats)

    def _refresh(self) -> None:
        self._checked = time.monotonic()
        stats = self.store.stats()
        key = (stats.sealed_files, stats.sealed_rows, stats.tail_rows, self._alert_key())
        if key == self._key:
            return
        files = self.store.sealed_files()
        tail = self.store.tail_rows()
        db = self._db
        columns = ", ".join(f'"{name}"' for name in COLUMN_NAMES)
        db.execute("BEGIN")
        try:
            sealed_changed = files != self._files
            if sealed_changed:
                self._sync_agg(files)
                if files:
                    db.execute(f"CREATE OR REPLACE VIEW sealed AS SELECT {columns} FROM {_parquet(files)}")
                    db.execute(
                        f"CREATE OR REPLACE VIEW sealed_rows AS SELECT {columns}, filename, file_row_number "
                        f"FROM {_parquet(files, located=True)}"
                    )
                self._files = files
            self._load_tail(tail, columns, append=not sealed_changed and tail.num_rows >= self._tail_rows)
            if not files:
                db.execute(f"CREATE OR REPLACE VIEW sealed AS SELECT {columns} FROM tail_flat WHERE false")
                db.execute(
                    f"CREATE OR REPLACE VIEW sealed_rows AS SELECT {columns}, '' AS filename, 0::BIGINT AS "
                    "file_row_number FROM tail_flat WHERE false"
                )
            db.execute("CREATE OR REPLACE VIEW events AS SELECT * FROM sealed UNION ALL SELECT * FROM tail_flat")
            db.execute(
                'CREATE OR REPLACE VIEW agg_all AS SELECT minute, cluster, "user", verb, resource, n, forbidden '
                f"FROM agg UNION ALL SELECT {_AGG_SELECT} FROM tail_flat GROUP BY ALL"
            )
            db.execute(
                f"CREATE OR REPLACE VIEW facts_all AS SELECT * EXCLUDE (file) FROM facts UNION ALL "
                f"SELECT {_FACT_SELECT} FROM tail_flat GROUP BY ALL"
            )
            db.execute(
                f"CREATE OR REPLACE VIEW objects_all AS SELECT * EXCLUDE (file) FROM objects UNION ALL "
                f"SELECT {_OBJECT_SELECT} FROM tail_flat GROUP BY ALL"
            )
            db.execute(
                "CREATE OR REPLACE VIEW bounds AS SELECT min(first) AS first, max(last) AS last FROM "
                "(SELECT first, last FROM file_times UNION ALL SELECT min(time), max(time) FROM tail_flat)"
            )
            self._load_alerts()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._files = []
            self._tail_rows = -1
            db.execute("DELETE FROM agg")
            db.execute("DELETE FROM file_times")
            db.execute("DELETE FROM facts")
            db.execute("DELETE FROM objects")
            raise
        newest = db.execute("SELECT max(minute) FROM agg_all").fetchone()
        self.newest = newest[0] if newest else None
        self._key = key
        self.generation += 1

    def _sync_agg(self, files: list[Path]) -> None:
        known = {str(path) for path in self._files}
        wanted = {str(path) for path in files}
        for gone in known - wanted:
            self._db.execute("DELETE FROM agg WHERE file = ?", [gone])
            self._db.execute("DELETE FROM file_times WHERE file = ?", [gone])
            self._db.execute("DELETE FROM facts WHERE file = ?", [gone])
            self._db.execute("DELETE FROM objects WHERE file = ?", [gone])
        for path in files:
            if str(path) not in known:
                name = str(path)
                self._db.execute(
                    f"INSERT INTO facts SELECT ? AS file, {_FACT_SELECT} FROM {_parquet([path])} GROUP BY ALL", [name]
                )
                self._db.execute(
                    f"INSERT INTO objects SELECT ? AS file, {_OBJECT_SELECT} FROM {_parquet([path])} GROUP BY ALL",
                    [name],
                )
                self._db.execute(
                    f"INSERT INTO agg SELECT file, {_AGG_FROM_FACTS} FROM facts WHERE file = ? GROUP BY ALL", [name]
                )
                self._db.execute(
                    "INSERT INTO file_times SELECT file, min(_first), max(_last) FROM facts WHERE file = ? "
                    "GROUP BY file",
                    [name],
                )

    def _load_tail(self, tail: pa.Table, columns: str, *, append: bool) -> None:
        """The tail's flat columns; while nothing was sealed the tail only grows, so only new rows are parsed."""
        db = self._db
        relation = "kubetrail_ui_tail"
        if append and self._tail_rows >= 0:
            if tail.num_rows > self._tail_rows:
                db.register(relation, flatten(tail.slice(self._tail_rows)))
                db.execute(f"INSERT INTO tail_flat SELECT {columns} FROM {relation}")
                db.unregister(relation)
        elif tail.num_rows:
            db.register(relation, flatten(tail))
            db.execute(f"CREATE OR REPLACE TABLE tail_flat AS SELECT {columns} FROM {relation}")
            db.unregister(relation)
        else:
            db.register(relation, tail)
            db.execute(f"CREATE OR REPLACE TABLE tail_flat AS SELECT {columns} FROM ({flat_select(relation)}) LIMIT 0")
            db.unregister(relation)
        self._tail_rows = tail.num_rows

    def _load_alerts(self) -> None:
        try:
            from kubetrail.store.alerts import register_alerts_view
        except ImportError:
            self._db.execute(f"CREATE OR REPLACE TABLE alerts_t AS {_EMPTY_ALERTS}")
            return
        register_alerts_view(self._db, self.store_dir)
        self._db.execute("CREATE OR REPLACE TABLE alerts_t AS SELECT * FROM alerts")
