"""`kubetrail query EXPR`: filter events in a store, or in log files read in place, and print them."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from kubetrail.cli.inputs import exit_if_strict, format_option, report_tally, strict_option
from kubetrail.cli.query_engines import ENGINES, open_engine
from kubetrail.intake import Tally
from kubetrail.query.errors import QueryError
from kubetrail.query.fields import FieldKind, lookup
from kubetrail.query.filter import parse_filter
from kubetrail.query.nodes import Filter
from kubetrail.query.output import DEFAULT_FIELDS, FORMATS, write
from kubetrail.query.window import Window

if TYPE_CHECKING:
    from kubetrail.query.source import Source

_WITH = re.compile(r"^\s*with\s", re.IGNORECASE)


def column_names(fields: str | None) -> list[str]:
    """`--fields user,ns,code,event` → the columns (filter field names and column names both work)."""
    if not fields:
        return list(DEFAULT_FIELDS)
    from kubetrail.store.columns import COLUMN_NAMES

    names: list[str] = []
    for item in (part.strip() for part in fields.split(",")):
        if not item:
            continue
        if item in COLUMN_NAMES:
            names.append(item)
            continue
        field = lookup(item)
        if field is None or field.kind in (FieldKind.JSON, FieldKind.BOUND):
            raise click.BadParameter(
                f"unknown field {item!r} (columns: {', '.join(COLUMN_NAMES)})", param_hint="--fields"
            )
        names.append(field.column)
    return names


def open_source(store_dir: str | None, files: Sequence[str], cluster: str | None, input_format: str) -> Source:
    """The store (--store, or $KUBETRAIL_STORE) or the --file inputs."""
    from kubetrail.query.source import open_files, open_store

    if files:
        return open_files(files, cluster=None if cluster is None else cluster, input_format=input_format)
    if not store_dir:
        raise click.UsageError("pass --store DIR (or set KUBETRAIL_STORE) or --file FILE")
    return open_store(store_dir)


def source_options(function: click.decorators.FC) -> click.decorators.FC:
    """The options every query and investigation takes: where the events are and the time window."""
    decorators = [
        click.option(
            "--store",
            "store_dir",
            envvar="KUBETRAIL_STORE",
            type=click.Path(file_okay=False),
            help="Store directory (default: $KUBETRAIL_STORE).",
        ),
        click.option(
            "--file",
            "files",
            multiple=True,
            metavar="FILE",
            help="Read these logs in place instead (NDJSON, gzip, rotated sets, EKS/GKE/AKS exports); repeatable.",
        ),
        format_option,
        strict_option,
        click.option("--since", help="Only events at or after: a duration back from now (1h, 7d) or a time."),
        click.option("--until", help="Only events before: a duration back from now or a time (RFC 3339)."),
        click.option("--cluster", help="Only this cluster (with --file: the cluster to label the events with)."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def window_of(since: str | None, until: str | None, cluster: str | None, files: Sequence[str]) -> Window:
    return Window(since=since, until=until, cluster=None if files else cluster)


def report_refused(source: object, *, strict: bool) -> None:
    """After the results: what reading --file inputs refused, as every command reports it (then --strict)."""
    tally = source if isinstance(source, Tally) else getattr(source, "tally", None)
    if not isinstance(tally, Tally):
        return
    report_tally(tally, lambda line: click.echo(line, err=True))
    exit_if_strict(tally, strict)


def _print_file_events(
    files: Sequence[str],
    parsed: Filter,
    window: Window,
    cluster: str | None,
    input_format: str,
    limit: int,
    descending: bool,
    strict: bool,
) -> bool:
    """`-o ndjson` from log files: the matching lines as written, read in place without DuckDB when the
    inputs and the filter allow it (False: use the DuckDB path)."""
    from kubetrail.query.inplace import matching_events

    found = matching_events(
        files, parsed, window, cluster=cluster, input_format=input_format, limit=limit, descending=descending
    )
    if found is None:
        return False
    sys.stdout.flush()
    stream = sys.stdout.buffer
    for start in range(0, len(found.lines), 4096):
        stream.write(b"".join(line + b"\n" for line in found.lines[start : start + 4096]))
    stream.flush()
    report_refused(found.tally, strict=strict)
    return True


def fail(error: QueryError) -> None:
    """Print a query error with a caret under the offending token, and exit 2."""
    click.echo(f"error: {error}", err=True)
    caret = error.caret()
    if caret:
        click.echo("  " + caret.replace("\n", "\n  "), err=True)
    if error.hint:
        click.echo(f"hint: {error.hint}", err=True)
    sys.exit(2)


@click.command(name="query")
@click.argument("expression", nargs=-1, metavar="EXPR")
@source_options
@click.option("-o", "--output", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True, help="At most N events (0 = all).")
@click.option("--fields", help="Columns to print, comma-separated (e.g. time,user,verb,ns,name,code,event).")
@click.option("--sql", help="Run this SQL instead; `events` is every event, `matched` those EXPR selects.")
@click.option("--desc/--asc", "descending", default=False, help="Newest first (default: oldest first).")
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="duckdb",
    show_default=True,
    help="spark: pyspark, kubetrail[spark].",
)
@click.option(
    "--lake", type=click.Path(file_okay=False), help="Read a lake of worker stores (kubetrail worker --lake)."
)
def query_command(
    expression: tuple[str, ...],
    store_dir: str | None,
    files: tuple[str, ...],
    input_format: str,
    strict: bool,
    since: str | None,
    until: str | None,
    cluster: str | None,
    output: str,
    limit: int,
    fields: str | None,
    sql: str | None,
    descending: bool,
    engine: str,
    lake: str | None,
) -> None:
    """Print the events EXPR selects, from the store or (with --file) straight from log files.

    EXPR is a filter: `field OP value` terms, ANDed when side by side, with `or`, `not` and parentheses.
    OP is = != ~ (glob) !~ < <= > >= or `in (a,b)`. Fields: user group sa ns name resource subresource
    verb code apigroup decision reason ip (CIDR too) ua uri id stage level cluster time since until and
    event./json/pointer. See docs/query.md.

    -o ndjson prints the matching events themselves, one JSON per line (pipe them to jq or another tool).

    \b
    Examples:
      kubetrail query --store ./store 'resource=secrets verb in (get,list,watch)' --since 1h
      kubetrail query --file /var/log/kubernetes/audit/ 'code=403' -o ndjson --limit 0
      kubetrail query --store ./store 'user=jane@example.com ns=prod code>=400 name~web-*'
      kubetrail query --store ./store 'ip=10.0.0.0/8 not group=system:nodes' --fields time,user,ip,uri
      kubetrail query --store ./store 'code=403' --sql 'SELECT user, count(*) n FROM matched GROUP BY 1 ORDER BY n DESC'
      kubetrail query --lake /lake --engine spark 'resource=secrets verb=get' --since 1d
    """
    text = " ".join(expression)
    columns = column_names(fields)
    try:
        parsed = parse_filter(text)
        window = window_of(since, until, cluster, files)
        window.terms()
        in_place = files and not lake and engine == "duckdb" and not sql and output == "ndjson" and not fields
        if in_place and _print_file_events(files, parsed, window, cluster, input_format, limit, descending, strict):
            return
        with open_engine(
            engine, lake=lake, store_dir=store_dir, files=files, cluster=cluster, input_format=input_format
        ) as source:
            if sql:
                clause, params = source.where(parsed, window)
                prefix = f"WITH matched AS (SELECT * FROM events WHERE {clause})"
                statement = _WITH.sub(prefix + ", ", sql, count=1) if _WITH.match(sql) else f"{prefix} {sql}"
                table = source.sql(statement, params)
                write(table, output, sys.stdout)
                report_refused(source, strict=strict)
                return
            wanted = columns if output != "ndjson" or fields else ["event"]
            table = source.select(parsed, window, columns=wanted, limit=limit, order="desc" if descending else "asc")
            write(table, output, sys.stdout, events=output == "ndjson" and not fields)
            if output == "table" and limit and table.num_rows == limit:
                click.echo(f"(first {limit} events; --limit 0 for all)", err=True)
            report_refused(source, strict=strict)
    except QueryError as error:
        fail(error)
        return
