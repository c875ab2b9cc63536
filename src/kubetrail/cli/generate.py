"""`kubetrail generate`: write a generated cluster's audit log as NDJSON (gzip for a `.gz` name)."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import click
import msgspec
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from kubetrail.cli import generate_sinks as sinks
from kubetrail.cli.generate_sinks import DEFAULT_WEBHOOK_BATCH
from kubetrail.emit.generator import DEFAULT_START, SCENARIOS, GeneratorConfig, generate
from kubetrail.emit.options import AuditLogOptions
from kubetrail.model.event import Event
from kubetrail.model.microtime import parse_microtime
from kubetrail.policy.evaluate import compile_policy
from kubetrail.policy.load import load_policy
from kubetrail.policy.record import record

_FLUSH_BYTES = 1 << 20
_PROGRESS_EVERY = 2048


def recorded(events: Iterator[Event], policy_file: str | None) -> Iterator[Event]:
    """The events as written under the policy in `policy_file` (all of them, unchanged, without one)."""
    if policy_file is None:
        yield from events
        return
    loaded = load_policy(Path(policy_file))
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    evaluate = compile_policy(loaded.policy).evaluate_event
    for event in events:
        kept = record(event, evaluate(event))
        if kept is not None:
            yield kept


def write_ndjson(events: Iterator[Event], out: BinaryIO) -> int:
    """Write one JSON event per line; returns the number written."""
    encoder = msgspec.json.Encoder()
    buffer = bytearray()
    count = 0
    for event in events:
        encoder.encode_into(event, buffer, -1)
        buffer += b"\n"
        count += 1
        if len(buffer) >= _FLUSH_BYTES:
            out.write(buffer)
            buffer.clear()
    out.write(buffer)
    return count


def _finish(result: sinks.SinkResult, what: str) -> None:
    click.echo(
        f"{what}: {result.written:,} events" + (f", {result.failed:,} NOT delivered" if result.failed else ""), err=True
    )
    if result.failed:
        sys.exit(1)


def _parse_start(text: str | None) -> datetime:
    if text is None:
        return DEFAULT_START
    if text == "now":
        return datetime.now(UTC).replace(microsecond=0)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time (e.g. 2026-03-19T10:00:00Z) or `now`") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def with_progress(events: Iterator[Event], config: GeneratorConfig, console: Console, label: str) -> Iterator[Event]:
    """Pass events through while a progress bar on `console` follows the simulated time.

    `label` (it may name a webhook URL) is the task's description, shown as plain text: not markup."""
    with Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} simulated s"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=config.duration)
        for count, event in enumerate(events, 1):
            if count % _PROGRESS_EVERY == 0:
                elapsed = (parse_microtime(event.stageTimestamp) - config.start).total_seconds()
                progress.update(task, completed=min(elapsed, config.duration))
            yield event
        progress.update(task, completed=config.duration)


@click.command(name="generate")
@click.option("--nodes", type=click.IntRange(1, 5000), default=3, show_default=True, help="Cluster nodes.")
@click.option(
    "--rate", type=click.FloatRange(min=0.01), default=25.0, show_default=True, help="Requests per simulated second."
)
@click.option("--duration", type=click.FloatRange(min=1), default=600.0, show_default=True, help="Simulated seconds.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed: same seed, same bytes.")
@click.option("--start", "start_text", help="Time of the first request (ISO 8601 or `now`; default 2026-03-19T10:00Z).")
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    type=click.Choice(["all", *SCENARIOS]),
    help="Inject an attack scenario a few times (repeatable; `all` for every one).",
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False),
    help="Apply this audit policy (default: record every stage at RequestResponse).",
)
@click.option("-o", "--output", default="-", show_default=True, help="Output file (`-` = stdout; `.gz` = gzip).")
@click.option(
    "--log-maxsize",
    type=click.IntRange(min=1),
    help="Write a rotated set through the apiserver's log backend: rotate at this many MB.",
)
@click.option("--log-maxbackup", type=click.IntRange(min=0), default=0, help="With --log-maxsize: backups kept.")
@click.option("--log-maxage", type=click.IntRange(min=0), default=0, help="With --log-maxsize: days backups are kept.")
@click.option("--log-compress", is_flag=True, help="With --log-maxsize: gzip the backups.")
@click.option("--log-format", type=click.Choice(["json", "legacy"]), default="json", help="With --log-maxsize.")
@click.option("--webhook", "webhook_url", metavar="URL", help="POST EventLists to this URL instead of writing a file.")
@click.option(
    "--webhook-config",
    type=click.Path(dir_okay=False),
    help="POST to the webhook a kubeconfig file describes (as --audit-webhook-config-file).",
)
@click.option(
    "--webhook-batch",
    type=click.IntRange(min=1),
    default=DEFAULT_WEBHOOK_BATCH,
    show_default=True,
    help="Events per POST.",
)
@click.option(
    "--webhook-initial-backoff",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds before the first retry of a failed POST (--audit-webhook-initial-backoff).",
)
def generate_command(
    nodes: int,
    rate: float,
    duration: float,
    seed: int,
    start_text: str | None,
    scenarios: tuple[str, ...],
    policy_file: str | None,
    output: str,
    log_maxsize: int | None,
    log_maxbackup: int,
    log_maxage: int,
    log_compress: bool,
    log_format: str,
    webhook_url: str | None,
    webhook_config: str | None,
    webhook_batch: int,
    webhook_initial_backoff: float,
) -> None:
    """Generate a realistic audit log of a small cluster as NDJSON (`audit.k8s.io/v1` events).

    Traffic of controllers, the scheduler, kubelets, kube-proxy, CoreDNS, CI and people, with
    every stage the apiserver writes; add attack scenarios with --scenario. Without --policy every
    event is written at RequestResponse; with a policy, only what it records, at its levels.

    \b
    Examples:
      kubetrail generate -o audit.log
      kubetrail generate --nodes 10 --rate 200 --duration 3600 --scenario all -o audit.log.gz
      kubetrail generate --policy audit-policy.yaml --scenario exec-into-pod --seed 42 -o - | head
      kubetrail generate --duration 3600 -o audit.log --log-maxsize 10 --log-maxbackup 5 --log-compress
      kubetrail generate --scenario all --webhook http://127.0.0.1:8080/audit/dev
    """
    start = _parse_start(start_text)
    config = GeneratorConfig(seed=seed, nodes=nodes, rate=rate, duration=duration, start=start, scenarios=scenarios)
    events = recorded(generate(config), policy_file)
    if webhook_url is not None or webhook_config is not None:
        if webhook_url is not None and webhook_config is not None:
            raise click.UsageError("give --webhook or --webhook-config, not both")
        target = sinks.webhook_config(webhook_url, webhook_config)
        events = with_progress(events, config, Console(stderr=True), f"posting to {target.server}")
        _finish(
            sinks.post_to_webhook(events, target, webhook_batch, initial_backoff=webhook_initial_backoff),
            f"posted to {target.server}",
        )
        return
    if log_maxsize is not None:
        if output == "-":
            raise click.UsageError("--log-maxsize needs a file: give -o PATH")
        options = AuditLogOptions(
            path=output,
            max_size=log_maxsize,
            max_backups=log_maxbackup,
            max_age=log_maxage,
            compress=log_compress,
            format=log_format,
        )
        events = with_progress(events, config, Console(stderr=True), "generating")
        _finish(sinks.write_rotated(events, options), f"wrote the rotated set {output}")
        return
    if output == "-":
        write_ndjson(events, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    path = Path(output)
    events = with_progress(events, config, Console(stderr=True), "generating")
    with open(path, "wb") as handle:
        if path.suffix == ".gz":
            # mtime=0 keeps the gzip header free of the wall clock: same seed, same bytes.
            with gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0) as packed:
                count = write_ndjson(events, packed)  # type: ignore[arg-type]
        else:
            count = write_ndjson(events, handle)
    click.echo(f"wrote {count:,} events to {path}", err=True)
