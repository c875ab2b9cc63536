"""`kubetrail ingest --store DIR FILE…`: bulk-load audit logs and managed-cloud exports into a store."""

from __future__ import annotations

import json
import queue
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from kubetrail.collect.readers import FORMATS, ReadBatch, expand_inputs, read_file
from kubetrail.collect.readers.base import short_reason
from kubetrail.secrets.batch import redact_events
from kubetrail.store import Store, check_cluster

DEFAULT_CLUSTER = "default"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_size(text: str) -> int:
    """`500M`, `10GiB`, `1.5G`, `4096` → bytes (K, M, G… are powers of 1024, as for disk quotas)."""
    match = _SIZE.match(text)
    if not match:
        raise click.BadParameter(f"{text!r} is not a size (examples: 500M, 10GiB, 1048576)")
    return int(float(match[1]) * 1024 ** _UNITS[match[2].lower()])


class SizeType(click.ParamType[int]):
    name = "SIZE"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        return value if isinstance(value, int) else parse_size(str(value))


@dataclass
class Summary:
    """What an ingest did, for the closing report (text or JSON)."""

    files: int = 0
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    clusters: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    dead_letter: str = ""
    retention_removed: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "events": self.read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": sum(self.rejected.values()),
            "rejected_reasons": dict(self.rejected.most_common()),
            "skipped": sum(self.skipped.values()),
            "skipped_reasons": dict(self.skipped.most_common()),
            "clusters": dict(self.clusters),
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.read / self.seconds) if self.seconds else 0,
            "dead_letter": self.dead_letter,
            "retention_removed_files": self.retention_removed,
        }


_DONE = object()


def prefetch_batches(files: list[Path], input_format: str) -> Iterator[tuple[Path, ReadBatch]]:
    """Read and decode in a background thread, so decoding overlaps the store's fsyncs."""
    channel: queue.Queue[object] = queue.Queue(maxsize=4)

    def produce() -> None:
        try:
            for path in files:
                for batch in read_file(path, input_format):
                    channel.put((path, batch))
            channel.put(_DONE)
        except BaseException as error:  # handed to the consumer, which re-raises it
            channel.put(error)

    thread = threading.Thread(target=produce, name="kubetrail-ingest-reader", daemon=True)
    thread.start()
    while True:
        item = channel.get()
        if item is _DONE:
            return
        if isinstance(item, BaseException):
            raise item
        yield item  # type: ignore[misc]


def store_batch(store: Store, batch: ReadBatch, cluster_flag: str | None, summary: Summary) -> None:
    cluster = check_cluster(cluster_flag or batch.cluster or DEFAULT_CLUSTER)
    if batch.events:
        result = store.append(cluster, batch.events, batch.raws)
        summary.read += len(batch.events)
        summary.accepted += result.accepted
        summary.duplicates += result.duplicates
        summary.clusters[cluster] += len(batch.events)
    for rejected in batch.rejected:
        store.dead_letter(source=rejected.source, reason=rejected.reason, raw=rejected.raw, line=rejected.line)
        summary.rejected[short_reason(rejected.reason)] += 1
    summary.skipped.update(batch.skipped)


def _print_summary(console: Console, summary: Summary, store_dir: str) -> None:
    rate = f"{summary.read / summary.seconds:,.0f} events/s" if summary.seconds else ""
    console.print(f"ingested {summary.files} file(s) into {store_dir} in {summary.seconds:.1f} s ({rate})")
    console.print(f"  accepted    {summary.accepted:,} new events", highlight=False)
    console.print(f"  duplicates  {summary.duplicates:,} (already stored)", highlight=False)
    rejected = sum(summary.rejected.values())
    where = f" (kept with the reason in {summary.dead_letter})" if rejected else ""
    console.print(f"  rejected    {rejected:,}{where}", highlight=False)
    for reason, count in summary.rejected.most_common(10):
        console.print(f"    {count:>8,}  {reason}", highlight=False, markup=False)
    skipped = sum(summary.skipped.values())
    if skipped:
        console.print(f"  skipped     {skipped:,} records that are not audit events", highlight=False)
        for reason, count in summary.skipped.most_common(10):
            console.print(f"    {count:>8,}  {reason}", highlight=False, markup=False)
    if len(summary.clusters) > 1 or (summary.clusters and DEFAULT_CLUSTER not in summary.clusters):
        listing = ", ".join(f"{name} {count:,}" for name, count in sorted(summary.clusters.items()))
        console.print(f"  clusters    {listing}", highlight=False)
    if summary.retention_removed:
        console.print(f"  retention   removed {summary.retention_removed} sealed file(s)", highlight=False)


@click.command(name="ingest")
@click.argument("inputs", nargs=-1, required=True, metavar="FILE…")
@click.option("--store", "store_dir", required=True, type=click.Path(file_okay=False), help="Store directory.")
@click.option(
    "--cluster", default=None, help="Cluster name for the events (default: the export's cluster, else 'default')."
)
@click.option(
    "--format",
    "input_format",
    type=click.Choice(["auto", *FORMATS]),
    default="auto",
    show_default=True,
    help="Input format: native audit log (k8s) or an EKS / GKE / AKS export.",
)
@click.option("--retention-days", type=click.IntRange(min=0), help="Then remove partitions older than N days.")
@click.option("--max-bytes", type=SizeType(), help="Then remove the oldest partitions beyond this size (e.g. 50G).")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: on a terminal).")
@click.option("--redact", is_flag=True, help="Replace secret values (as `kubetrail secrets redact`) before storing.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def ingest_command(
    inputs: tuple[str, ...],
    store_dir: str,
    cluster: str | None,
    input_format: str,
    retention_days: int | None,
    max_bytes: int | None,
    progress: bool | None,
    redact: bool,
    output: str,
) -> None:
    """Load audit events from FILEs into the store; re-ingesting a file stores nothing twice.

    FILE may be an audit log (NDJSON, an EventList or a JSON array, gzip or not), a directory or glob of
    rotated logs (`audit.log`, `audit-2026-03-19T10-00-00.000.log.gz`, … read oldest first), or an
    export from EKS (CloudWatch Logs), GKE (Cloud Logging) or AKS (diagnostic settings), detected
    automatically. Refused lines go to the store's dead-letter file with the reason.

    Exit code 0 when every line was stored (or already was), 1 when some were refused.

    \b
    Examples:
      kubetrail ingest --store ./store --cluster prod /var/log/kubernetes/audit/
      kubetrail ingest --store ./store gke-audit.json eks-export-000000.gz
    """
    if cluster is not None:
        check_cluster(cluster)
    files = expand_inputs(list(inputs))
    console = Console(stderr=output == "json")
    show = progress if progress is not None else console.is_terminal
    summary = Summary(files=len(files))
    total = sum(path.stat().st_size for path in files)
    started = time.perf_counter()
    with Store.open(store_dir) as store:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[events]:>12,} events  {task.fields[rate]:>9,.0f}/s"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, disable=not show, transient=True) as bar:
            task: TaskID = bar.add_task("ingest", total=total, events=0, rate=0.0)
            done_bytes = 0
            current: Path | None = None
            for path, batch in prefetch_batches(files, input_format):
                if path != current:
                    if current is not None:
                        done_bytes += current.stat().st_size
                    current = path
                    bar.update(task, description=path.name)
                if redact:
                    redact_events(batch.events, batch.raws, str(path))
                store_batch(store, batch, cluster, summary)
                elapsed = time.perf_counter() - started
                bar.update(
                    task,
                    completed=done_bytes + batch.position,
                    events=summary.read,
                    rate=summary.read / elapsed if elapsed else 0.0,
                )
        store.seal()
        if retention_days is not None or max_bytes is not None:
            plan = store.apply_retention(retention_days=retention_days, max_bytes=max_bytes)
            summary.retention_removed = len(plan.removed)
        dead = store.dead_letters.current_path
        summary.dead_letter = str(dead) if dead is not None and summary.rejected else ""
    summary.seconds = time.perf_counter() - started
    if output == "json":
        click.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        _print_summary(console, summary, store_dir)
    if summary.rejected:
        sys.exit(1)
