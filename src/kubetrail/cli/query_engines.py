"""`kubetrail query --engine duckdb|spark --lake DIR`: which engine reads which events.

DuckDB (the default) reads a store, log files or a lake in this process; Spark (`kubetrail[spark]`) reads a
store or a lake with pyspark, in local mode unless $KUBETRAIL_SPARK_MASTER names a cluster.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import click

from kubetrail.query.nodes import Filter
from kubetrail.query.window import Window

if TYPE_CHECKING:
    import pyarrow as pa

    from kubetrail.query.source import Source

ENGINES = ("duckdb", "spark")
SPARK_MASTER_ENV = "KUBETRAIL_SPARK_MASTER"


class QuerySource(Protocol):
    """What `kubetrail query` needs of a source, whichever engine runs it."""

    def where(self, text: str | Filter, window: Window | None = None, *, now: datetime | None = None) -> Any: ...

    def select(
        self,
        text: str | Filter,
        window: Window | None = None,
        *,
        columns: Sequence[str] | None = None,
        limit: int = 0,
        order: str = "asc",
        now: datetime | None = None,
    ) -> pa.Table: ...

    def sql(self, sql: str, params: Any = ...) -> pa.Table: ...


@contextmanager
def open_engine(
    engine: str,
    *,
    lake: str | None,
    store_dir: str | None,
    files: Sequence[str],
    cluster: str | None,
    input_format: str,
) -> Iterator[QuerySource]:
    """The source for the chosen engine and inputs: --lake, else --file, else --store."""
    if lake and files:
        raise click.UsageError("pass --lake or --file, not both")
    if engine == "spark":
        if files:
            raise click.UsageError("--engine spark reads a --store or a --lake, not --file")
        if not lake and not store_dir:
            raise click.UsageError("pass --store DIR (or set KUBETRAIL_STORE) or --lake DIR")
        from kubetrail.query.spark_source import active_spark_session, open_spark_source, spark_session

        owned = active_spark_session() is None
        spark = spark_session(os.environ.get(SPARK_MASTER_ENV, "local[*]"))
        try:
            with open_spark_source(spark, store=None if lake else store_dir, lake=lake) as spark_source:
                yield spark_source
        finally:
            if owned:
                spark.stop()
        return
    from kubetrail.query.source import Source, open_files, open_store

    source: Source
    if lake:
        from kubetrail.bus.lake import open_lake

        source = Source(open_lake(Path(lake)), description=lake)
    elif files:
        source = open_files(files, cluster=cluster, input_format=input_format)
    elif store_dir:
        source = open_store(store_dir)
    else:
        raise click.UsageError("pass --store DIR (or set KUBETRAIL_STORE), --lake DIR or --file FILE")
    with source:
        yield source
