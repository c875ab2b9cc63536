"""Printing query results: table (rich), json, ndjson (the events themselves), csv and yaml.

rich, PyYAML and pyarrow load only when a result is printed in a format that needs them."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import pyarrow as pa

FORMATS = ("table", "json", "ndjson", "csv", "yaml")
DEFAULT_FIELDS = ("time", "user", "verb", "resource", "subresource", "namespace", "name", "response_code", "cluster")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def records(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (times in RFC 3339)."""
    return [{key: _plain(value) for key, value in row.items()} for row in table.to_pylist()]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def print_table(table: pa.Table, stream: TextIO, *, title: str = "") -> None:
    """A rich table sized to the terminal (or 200 columns when not one).

    Titles, column names and cells are printed as given (rich `Text`), never read as rich markup or emoji
    codes: they hold event values, and a user name such as `[/x]` must neither crash nor change."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=stream, width=None if stream.isatty() else 200, highlight=False)
    heading = Text(title, style="table.title") if title else None
    view = Table(title=heading, title_justify="left", show_edge=False, pad_edge=False)
    for name in table.column_names:
        view.add_column(Text(name), overflow="fold")
    for row in table.to_pylist():
        view.add_row(*(Text(_cell(row[name])) for name in table.column_names))
    console.print(view)


def write(table: pa.Table, output: str, stream: TextIO, *, events: bool = False) -> None:
    """Print `table` in `output` format; `events` with ndjson prints the `event` column's JSON as stored."""
    if output == "table":
        print_table(table, stream)
    elif output == "ndjson":
        if events and "event" in table.column_names:
            for line in table.column("event").to_pylist():
                stream.write(line.rstrip("\n") + "\n")
        else:
            for record in records(table):
                stream.write(json.dumps(record, ensure_ascii=False) + "\n")
    elif output == "json":
        stream.write(json.dumps(_with_events(table), indent=2, ensure_ascii=False) + "\n")
    elif output == "yaml":
        import yaml

        stream.write(yaml.safe_dump(_with_events(table), sort_keys=False, allow_unicode=True))
    elif output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(table.column_names)
        for row in table.to_pylist():
            writer.writerow([_cell(row[name]) for name in table.column_names])
        stream.write(buffer.getvalue())
    else:
        raise ValueError(f"unknown output format {output!r}")


def _with_events(table: pa.Table) -> list[dict[str, Any]]:
    """Records, with the `event` column (when selected) as parsed JSON rather than a string."""
    rows = records(table)
    for row in rows:
        if isinstance(row.get("event"), str):
            row["event"] = json.loads(row["event"])
    return rows


def select_fields(table: pa.Table, fields: Sequence[str]) -> pa.Table:
    """The named columns that exist, in order."""
    return table.select([name for name in fields if name in table.column_names])
