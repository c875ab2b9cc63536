"""`kubetrail ingest --store DIR FILE…`: bulk-load audit logs and managed-cloud exports into a store.

Backfill is a door like any other: files are read through the intake, batches go through the pipeline (redact,
store) and detection runs on what the store newly made durable, exactly as in `serve`, so the UI, the
investigations and the compliance reports see the alerts of a backfilled log, and re-ingesting the same file
stores and alerts nothing twice.

Memory stays flat whatever the input size: decoded events exist only for the batch being stored and the few
batches detection has not run yet (INGEST_DETECTION_QUEUE), and the store keeps what it has not sealed as
Arrow batches, bounded in bytes (INGEST_STORE_OPTIONS), sealing by size as it goes.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click
from rich.console import Console

from kubetrail.cli.inputs import InputFiles, input_options
from kubetrail.gc_tuning import tune_for_streaming
from kubetrail.intake import Batch, Tally
from kubetrail.pipeline import DEFAULT_CLUSTER, Pipeline
from kubetrail.pipeline.detection import Detection, open_detection
from kubetrail.store import Store, StoreOptions, check_cluster

INGEST_BATCH_EVENTS = 4_000
"""Events per store append (intake batches are joined up to this): one WAL fsync covers them all."""
INGEST_DETECTION_QUEUE = 6_000
"""Stored events waiting for detection at most (a few KB each decoded); the reader waits beyond."""
INGEST_STORE_OPTIONS = StoreOptions(segment_bytes=16 << 20, max_unsealed_bytes=48 << 20)
"""Seal every 16 MiB of events and hold at most 48 MiB unsealed (reading waits for sealing beyond)."""

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

    inputs: Tally = field(default_factory=Tally)
    accepted: int = 0
    duplicates: int = 0
    clusters: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    dead_letter: str = ""
    retention_removed: int = 0
    alerts: int | None = None
    alerts_by_rule: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            **self.inputs.as_dict(),
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "clusters": dict(self.clusters),
            "alerts": self.alerts,
            "alerts_by_rule": dict(self.alerts_by_rule.most_common()),
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.inputs.events / self.seconds) if self.seconds else 0,
            "dead_letter": self.dead_letter,
            "retention_removed_files": self.retention_removed,
        }


def _print_summary(console: Console, summary: Summary, store_dir: str) -> None:
    def say(text: str) -> None:
        console.print(text)

    tally = summary.inputs
    rate = f"{tally.events / summary.seconds:,.0f} events/s" if summary.seconds else ""
    say(f"ingested {tally.files} file(s) into {store_dir} in {summary.seconds:.1f} s ({rate})")
    say(f"  accepted    {summary.accepted:,} new events")
    say(f"  duplicates  {summary.duplicates:,} (already stored)")
    rejected = tally.rejected
    where = f" (kept with the reason in {summary.dead_letter})" if rejected else ""
    say(f"  rejected    {rejected:,}{where}")
    for reason, count in tally.reasons.most_common(10):
        say(f"    {count:>8,}  {reason}")
    skipped = sum(tally.skipped.values())
    if skipped:
        say(f"  skipped     {skipped:,} records that are not audit events")
        for reason, count in tally.skipped.most_common(10):
            say(f"    {count:>8,}  {reason}")
    if len(summary.clusters) > 1 or (summary.clusters and DEFAULT_CLUSTER not in summary.clusters):
        listing = ", ".join(f"{name} {count:,}" for name, count in sorted(summary.clusters.items()))
        say(f"  clusters    {listing}")
    if summary.alerts is not None:
        say(f"  alerts      {summary.alerts:,} new (stored with the events)")
        for rule, count in summary.alerts_by_rule.most_common(10):
            say(f"    {count:>8,}  {rule}")
    if summary.retention_removed:
        say(f"  retention   removed {summary.retention_removed} sealed file(s)")


def joined_batches(batches: Iterable[tuple[Path, Batch]], limit: int) -> Iterator[tuple[Path, Batch]]:
    """Consecutive batches of the same file and cluster joined up to `limit` events (fewer, larger appends)."""
    pending: tuple[Path, Batch] | None = None
    for path, batch in batches:
        if pending is not None:
            held_path, held = pending
            if held_path == path and held.cluster == batch.cluster and len(held.events) + len(batch.events) <= limit:
                held.events.extend(batch.events)
                held.raws.extend(batch.raws)
                held.rejected.extend(batch.rejected)
                held.skipped.update(batch.skipped)
                held.position = batch.position
                continue
            yield pending
        pending = (path, batch)
    if pending is not None:
        yield pending


def _close_detection(detection: Detection, summary: Summary) -> None:
    """Detect what is queued, store the alerts, and count them by rule."""
    detection.drain(timeout=24 * 3600)
    detection.close()
    summary.alerts = detection.stats.alerts
    summary.alerts_by_rule.update(detection.stats.by_rule)


@click.command(name="ingest")
@click.argument("inputs", nargs=-1, required=True, metavar="FILE…")
@click.option("--store", "store_dir", required=True, type=click.Path(file_okay=False), help="Store directory.")
@click.option(
    "--cluster", default=None, help="Cluster name for the events (default: the export's cluster, else 'default')."
)
@click.option("--retention-days", type=click.IntRange(min=0), help="Then remove partitions older than N days.")
@click.option("--max-bytes", type=SizeType(), help="Then remove the oldest partitions beyond this size (e.g. 50G).")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: on a terminal).")
@click.option("--redact", is_flag=True, help="Replace secret values (as `kubetrail secrets redact`) before storing.")
@click.option(
    "--detect/--no-detect",
    default=True,
    show_default=True,
    help="Run detection on the new events and store the alerts, as serve does.",
)
@click.option(
    "--rules",
    multiple=True,
    metavar="FILE|DIR",
    help="Detection rules (repeatable; default: the built-in set, as serve).",
)
@click.option("--outputs", "outputs_file", type=click.Path(dir_okay=False), help="Also send alerts to these outputs.")
@input_options
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def ingest_command(
    inputs: tuple[str, ...],
    store_dir: str,
    cluster: str | None,
    retention_days: int | None,
    max_bytes: int | None,
    progress: bool | None,
    redact: bool,
    detect: bool,
    rules: tuple[str, ...],
    outputs_file: str | None,
    input_format: str,
    strict: bool,
    output: str,
) -> None:
    """Load audit events from FILEs into the store; re-ingesting a file stores nothing twice.

    FILE may be an audit log (NDJSON, an EventList or a JSON array, gzip or not), a directory or glob of
    rotated logs (`audit.log`, `audit-2026-03-19T10-00-00.000.log.gz`, … read oldest first), or an
    export from EKS (CloudWatch Logs), GKE (Cloud Logging) or AKS (diagnostic settings), detected
    automatically. Refused lines go to the store's dead-letter file with the reason.

    Detection runs as in `serve` (the built-in rules unless --rules; --no-detect skips it): alerts are stored
    with the events and appear in the UI, investigations and reports; re-ingesting raises no alert twice.
    Exit code 0 when the input was read (refused records are reported), 1 with --strict when any was refused,
    2 when an input is unusable.

    \b
    Examples:
      kubetrail ingest --store ./store --cluster prod /var/log/kubernetes/audit/
      kubetrail ingest --store ./store gke-audit.json eks-export-000000.gz
      kubetrail ingest --store ./store --no-detect --redact old-audit.log.gz
    """
    if cluster is not None:
        check_cluster(cluster)
    console = Console(stderr=output == "json")
    files = InputFiles(
        inputs, input_format=input_format, console=Console(stderr=True), progress=progress, label="ingest"
    )
    summary = Summary(inputs=files.tally)
    started = time.perf_counter()
    with Store.open(store_dir, INGEST_STORE_OPTIONS) as store:
        detection = (
            open_detection(store, list(rules) or None, outputs_file=outputs_file, block=True) if detect else None
        )
        if detection is not None:
            detection.queue_events = INGEST_DETECTION_QUEUE
        pipeline = Pipeline(store, redact=redact)
        tune_for_streaming()
        try:
            for path, batch in joined_batches(files.batches(), INGEST_BATCH_EVENTS):
                outcome = pipeline.accept(batch, cluster, source=str(path))
                summary.accepted += outcome.accepted
                summary.duplicates += outcome.duplicates
                if batch.events:
                    summary.clusters[outcome.cluster] += len(batch.events)
        finally:
            if detection is not None:
                _close_detection(detection, summary)
        store.seal()
        if retention_days is not None or max_bytes is not None:
            plan = store.apply_retention(retention_days=retention_days, max_bytes=max_bytes)
            summary.retention_removed = len(plan.removed)
        dead = store.dead_letters.current_path
        summary.dead_letter = str(dead) if dead is not None and files.tally.rejected else ""
    summary.seconds = time.perf_counter() - started
    if files.tally.rejected and not files.tally.events:
        files.report()
    if output == "json":
        click.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        _print_summary(console, summary, store_dir)
        files.report()
    files.exit_if_strict(strict)
