"""Reading a store or a lake with Apache Spark (pyspark, the optional `kubetrail[spark]` extra).

The sealed Parquet files (hive partitions `date=`/`cluster=`) are read by Spark itself, so the work spreads
over a cluster when `master` names one; the not yet sealed tail, small by design, is flattened on the driver
and added, so Spark sees exactly the events DuckDB sees. A lake keeps one copy per (cluster, auditID, stage),
as `kubetrail.bus.lake.open_lake` does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from kubetrail.query.errors import QueryError
from kubetrail.query.filter import parse_filter
from kubetrail.query.nodes import Filter
from kubetrail.query.source import Window
from kubetrail.query.spark import ORDERS, to_spark_sql
from kubetrail.store import Store
from kubetrail.store.columns import TAIL_SCHEMA
from kubetrail.store.views import flatten

INSTALL_HINT = "pip install 'kubetrail[spark]' and a Java 17+ runtime (Debian: openjdk-17-jre-headless)"
_WINDOW_PREFIXES = ("wa", "wb", "wc")


def _spark_type(arrow: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow):
        return "TIMESTAMP"
    if pa.types.is_date(arrow):
        return "DATE"
    if pa.types.is_int32(arrow):
        return "INT"
    if pa.types.is_int64(arrow):
        return "BIGINT"
    if pa.types.is_list(arrow):
        return f"ARRAY<{_spark_type(arrow.value_type)}>"
    return "STRING"


# The store's columns in Spark's DDL, partition columns last (Spark fills them from the directory names).
SPARK_SCHEMA = ", ".join(f"`{item.name}` {_spark_type(item.type)}" for item in TAIL_SCHEMA)


def spark_session(master: str = "local[*]", app_name: str = "kubetrail") -> Any:
    """A Spark session (the running one if any): UTC, no web UI, the driver bound to loopback in local mode."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise QueryError("--engine spark needs pyspark", hint=INSTALL_HINT) from None
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
    )
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
    try:
        session = builder.getOrCreate()
    except Exception as error:  # pyspark raises plain RuntimeErrors when the JVM cannot start
        raise QueryError(f"cannot start Spark: {str(error).splitlines()[0]}", hint=INSTALL_HINT) from error
    session.sparkContext.setLogLevel("ERROR")
    return session


def active_spark_session() -> Any | None:
    """The Spark session already running in this process, if any (so callers leave it running)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return None
    return SparkSession.getActiveSession()


def _to_arrow(frame: Any) -> pa.Table:
    if hasattr(frame, "toArrow"):
        return frame.toArrow()
    return pa.Table.from_batches(frame._collect_as_arrow(), schema=None)  # pyspark 3.5


@dataclass
class SparkSource:
    """A Spark session with an `events` temporary view; answers like `kubetrail.query.source.Source`."""

    spark: Any
    description: str = ""
    view: str = "events"
    _closed: bool = field(default=False, repr=False)

    def where(
        self, text: str | Filter, window: Window | None = None, *, now: datetime | None = None
    ) -> tuple[str, dict[str, object]]:
        """The Spark WHERE clause and named arguments for a filter within a window."""
        parsed = parse_filter(text) if isinstance(text, str) else text
        clause, args = to_spark_sql(parsed, now=now)
        clauses = [clause]
        for prefix, term in zip(_WINDOW_PREFIXES, window.terms() if window else [], strict=False):
            more, more_args = to_spark_sql(parse_filter(term), now=now, prefix=prefix)
            clauses.append(more)
            args.update(more_args)
        # `WHERE (true)` alone trips Spark 4's analyzer over a view with a window; leave trivial clauses out.
        kept = [item for item in clauses if item != "true"]
        return (" AND ".join(f"({item})" for item in kept) if kept else "true"), args

    def select(
        self,
        text: str | Filter,
        window: Window | None = None,
        *,
        columns: Sequence[str] | None = None,
        limit: int = 0,
        order: str = "asc",
        now: datetime | None = None,
    ) -> pa.Table:
        """The matching events (`limit` 0: all), oldest first by default."""
        if order not in ORDERS:
            raise QueryError(f"unknown order {order!r}", hint=f"one of {', '.join(ORDERS)}")
        clause, args = self.where(text, window, now=now)
        selected = ", ".join(f"`{name}`" for name in columns) if columns else "*"
        sql = f"SELECT {selected} FROM {self.view} WHERE {clause}"
        if ORDERS[order]:
            sql += f" ORDER BY {ORDERS[order]}"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return self.sql(sql, args)

    def sql(self, sql: str, args: dict[str, object] | None = None) -> pa.Table:
        """Run Spark SQL over the `events` view; Spark's errors become QueryErrors."""
        from pyspark.errors import PySparkException

        try:
            return _to_arrow(self.spark.sql(sql, args=args or None))
        except PySparkException as error:
            message = str(error).splitlines()[0]
            raise QueryError(f"cannot run the query: {message}", hint="see `kubetrail query --help`") from error

    def close(self) -> None:
        if not self._closed:
            self.spark.catalog.dropTempView(self.view)
            self._closed = True

    def __enter__(self) -> SparkSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _store_frames(spark: Any, directory: Path) -> tuple[Any | None, pa.Table | None]:
    """One store's sealed files as a Spark frame, and its unsealed tail flattened (None when empty)."""
    with Store.open(directory, read_only=True) as store:
        files = store.sealed_files()
        tail = store.tail_rows()
        data_dir = store.layout.data_dir
    frame = None
    if files:
        frame = (
            spark.read.schema(SPARK_SCHEMA).option("basePath", str(data_dir)).parquet(*(str(path) for path in files))
        )
    return frame, flatten(tail) if tail.num_rows else None


def open_spark_source(
    spark: Any, *, store: str | Path | None = None, lake: str | Path | None = None, view: str = "events"
) -> SparkSource:
    """A SparkSource over a store, or over every worker's store of a lake (`<lake>/worker=<id>/`)."""
    if (store is None) == (lake is None):
        raise QueryError("pass a store or a lake", hint="--store DIR or --lake DIR")
    if lake is not None:
        from kubetrail.bus.lake import worker_dirs

        directories = worker_dirs(Path(lake))
    else:
        directories = [Path(str(store))]
    frames: list[Any] = []
    tails: list[pa.Table] = []
    for directory in directories:
        frame, tail = _store_frames(spark, directory)
        if frame is not None:
            frames.append(frame)
        if tail is not None:
            tails.append(tail)
    if tails:
        table = pa.concat_tables(tails).select(TAIL_SCHEMA.names)
        rows = list(zip(*(column.to_pylist() for column in table.columns), strict=True))
        frames.append(spark.createDataFrame(rows, schema=SPARK_SCHEMA))
    if not frames:
        frames.append(spark.createDataFrame([], schema=SPARK_SCHEMA))
    events = frames[0]
    for frame in frames[1:]:
        events = events.unionByName(frame)
    if lake is not None:
        from pyspark.sql import Window as SparkWindow
        from pyspark.sql import functions

        first = SparkWindow.partitionBy("cluster", "audit_id", "stage").orderBy("time")
        events = events.withColumn("_copy", functions.row_number().over(first)).where("_copy = 1").drop("_copy")
    events.createOrReplaceTempView(view)
    return SparkSource(spark, description=str(lake if lake is not None else store), view=view)
