"""The events a filter selects from NDJSON log files, read in place without DuckDB (`query --file -o ndjson`).

`matching_events` answers with the events' lines as written, ordered as `kubetrail query` orders them, and
the tally of what reading refused — or None when the inputs or the filter need the DuckDB path
(`kubetrail.query.files`): inputs other than the log backend's NDJSON, or terms the Python evaluator does
not compile. Lines the evaluator cannot be sure of are decided by DuckDB over those lines alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kubetrail.intake import Format, Tally, expand_inputs, peek, read_path, sniff
from kubetrail.query.evaluate import Unsupported, compile_filter
from kubetrail.query.filter import parse_filter
from kubetrail.query.literals import terms
from kubetrail.query.nodes import And, Filter, Node
from kubetrail.query.scan import Scan, SortKey, scan_files
from kubetrail.query.window import Window


def is_plain_ndjson(path: Path) -> bool:
    """Whether a file is the log backend's NDJSON (one Event per line), gzip'd or not."""
    start = peek(path).lstrip()
    if not start.startswith(b"{") or sniff(start) != Format.NATIVE:
        return False
    first_line = start.split(b"\n", 1)[0]
    return b'"auditID"' in first_line and b'"EventList"' not in first_line[:200]


@dataclass
class Found:
    """The matching events' lines (without their newline), in order, and what reading the files refused."""

    lines: list[bytes]
    tally: Tally


def combined(filter: Filter, window: Window | None) -> Filter:
    """The filter ANDed with the window's terms (--since / --until)."""
    extra = [parse_filter(term).root for term in (window.terms() if window else [])]
    nodes: list[Node] = [node for node in (filter.root, *extra) if node is not None]
    if not nodes:
        return Filter(filter.text, None)
    return Filter(filter.text, nodes[0] if len(nodes) == 1 else And(tuple(nodes)))


def matching_events(
    inputs: Sequence[str | Path],
    filter: Filter,
    window: Window | None = None,
    *,
    cluster: str | None = None,
    input_format: str = "auto",
    limit: int = 0,
    descending: bool = False,
    now: datetime | None = None,
) -> Found | None:
    """The lines of the events `filter` selects within `window` (`limit` 0: all), or None for the DuckDB path."""
    if input_format not in ("auto", "k8s"):
        return None
    paths = expand_inputs([str(item) for item in inputs])
    if not paths or not all(is_plain_ndjson(path) for path in paths):
        return None
    whole = combined(filter, window)
    label = cluster or "default"
    moment = now or datetime.now(UTC)
    try:
        predicate = compile_filter(whole, cluster=label, now=moment)
    except Unsupported:
        return None
    scan = scan_files(paths, terms(whole), predicate)
    tally = _tally(paths, scan)
    if scan.unclear:
        lines = _decided_by_duckdb(scan, whole, label, moment, limit=limit, descending=descending)
    else:
        lines = [line for _, line in _ordered(scan.matches, descending)]
        if limit:
            lines = lines[:limit]
    return Found([line.rstrip(b"\r") for line in lines], tally)


def _tally(paths: Sequence[Path], scan: Scan) -> Tally:
    """Events counted by lines; files holding refused lines are read through the intake for the report."""
    tally = Tally(files=len(paths))
    for path in paths:
        if path in scan.refused_files:
            for batch in read_path(path, Format.NATIVE):
                tally.events += len(batch.events)
                for item in batch.rejected:
                    tally.reject(item)
                tally.skipped.update(batch.skipped)
        else:
            tally.events += scan.lines_of.get(path, 0)
    return tally


def _none_last(items: list[tuple[SortKey, bytes]], index: int, descending: bool) -> list[tuple[SortKey, bytes]]:
    present = [item for item in items if item[0][index] is not None]
    absent = [item for item in items if item[0][index] is None]
    present.sort(key=lambda item: item[0][index], reverse=descending)  # type: ignore[arg-type,return-value]
    return present + absent


def _ordered(items: list[tuple[SortKey, bytes]], descending: bool) -> list[tuple[SortKey, bytes]]:
    """Ordered as `ORDER BY time, stage_time, audit_id` (ASC or DESC, NULLS LAST): stable sorts, last key
    first."""
    for index in (2, 1, 0):
        items = _none_last(items, index, descending)
    return items


def _decided_by_duckdb(
    scan: Scan, filter: Filter, cluster: str, now: datetime, *, limit: int, descending: bool
) -> list[bytes]:
    """Matching and unclear lines, filtered and ordered as `open_files(…).select` does (its substring test
    included)."""
    import duckdb

    from kubetrail.query.files import lines_select
    from kubetrail.query.run import ORDERS
    from kubetrail.query.source import line_prefilter
    from kubetrail.query.translate import to_sql

    texts = [line.decode("utf-8", errors="replace") for _, line in scan.matches]
    texts += [line.decode("utf-8", errors="replace") for line in scan.unclear]
    literal, literal_params = line_prefilter(filter)
    clause, params = to_sql(filter, now=now)
    clause, params = f"({literal}) AND ({clause})", [*literal_params, *params]
    sql = (
        f"SELECT event FROM ({lines_select('(SELECT unnest(?::VARCHAR[]) AS event)', cluster)}) "
        f"WHERE {clause} ORDER BY {ORDERS['desc' if descending else 'asc']}"
    )
    if limit:
        sql += f" LIMIT {int(limit)}"
    with duckdb.connect(":memory:") as conn:
        conn.execute("SET TimeZone = 'UTC'")
        rows = conn.execute(sql, [texts, *params]).fetchall()
    return [str(row[0]).rstrip("\n").encode() for row in rows]
