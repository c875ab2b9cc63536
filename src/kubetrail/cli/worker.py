"""`kubetrail worker`: one member of the scale-out worker pool (JetStream → lake, detection, alerts)."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kubetrail.bus.config import DEFAULT_HEALTH_LISTEN, DEFAULT_PARTITIONS, MAX_PARTITIONS, parse_bus_url
from kubetrail.detect.stateful import DEFAULT_MAX_KEYS
from kubetrail.extras import require
from kubetrail.logs import LEVELS
from kubetrail.logs import configure as configure_logging

if TYPE_CHECKING:
    from kubetrail.bus.worker import Worker


async def _run(worker: Worker, health_listen: tuple[str, int] | None = None) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    from kubetrail.bus.health import HealthServer

    health: HealthServer | None = None
    try:
        if health_listen is not None:
            health = HealthServer(worker, *health_listen)
            await health.start()
            click.echo(f"kubetrail worker {worker.worker_id}: health at {health.url}/healthz, /readyz and /metrics")
        await worker.connect()
        click.echo(
            f"kubetrail worker {worker.worker_id}: consuming {worker.config.stream} "
            f"({worker.config.partitions} partitions, shared with the live workers) into {worker.store.layout.root}"
        )
        await worker.run()
    finally:
        if health is not None:
            await health.stop()
        await worker.close()


@click.command(name="worker")
@click.option("--bus", "bus_url", required=True, metavar="URL[,URL…]", help="NATS servers with JetStream.")
@click.option("--lake", type=click.Path(file_okay=False), required=True, help="The shared lake directory.")
@click.option("--id", "worker_id", default=None, help="This worker's name in the lake  [default: the host name]")
@click.option("--bus-replicas", type=click.IntRange(1, 5), default=1, show_default=True, help="Stream replicas.")
@click.option(
    "--bus-partitions",
    type=click.IntRange(1, MAX_PARTITIONS),
    default=DEFAULT_PARTITIONS,
    show_default=True,
    help="Partitions of the events (by identity); the same on every receiver and worker.",
)
@click.option(
    "--ack-wait",
    type=click.FloatRange(min=0.5),
    default=30.0,
    show_default=True,
    help="Seconds before an unacknowledged batch goes to another worker.",
)
@click.option(
    "--rules",
    multiple=True,
    metavar="FILE|DIR",
    help="Detection rules (default: the built-in set; `--rules none` turns detection off).",
)
@click.option(
    "--max-keys",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_KEYS,
    show_default=True,
    help="Keys each stateful rule keeps per partition (a rule's own max_keys wins); the least recent are evicted.",
)
@click.option(
    "--health-listen",
    default=DEFAULT_HEALTH_LISTEN,
    metavar="HOST:PORT|off",
    help="Where to serve /healthz, /readyz and /metrics  [default: a free loopback port, printed at start; "
    "a pod passes 0.0.0.0:8081 for the kubelet's probes]",
)
@click.option(
    "--log-level",
    type=click.Choice(LEVELS),
    default="info",
    show_default=True,
    help="Log lines to stderr at this level and above (partitions taken and given up are info).",
)
def worker_command(
    bus_url: str,
    lake: str,
    worker_id: str | None,
    bus_replicas: int,
    bus_partitions: int,
    ack_wait: float,
    rules: tuple[str, ...],
    max_keys: int,
    health_listen: str,
    log_level: str,
) -> None:
    """Consume audit batches from NATS JetStream into this worker's part of the lake, detecting as they pass.

    Receivers partition the events by identity; the live workers share the partitions (announced in a
    JetStream key-value bucket, spread by rendezvous hashing), so each batch is handled by one worker
    and one identity's stateful-rule state lives on one worker. Batches are acknowledged to JetStream
    after their fsync into this worker's write-ahead log and a checkpoint of the partition's state; a
    killed worker's partitions, their state and their unacknowledged batches go to the others within
    seconds. Alerts are published to the alerts stream with one message id per (rule, cluster,
    auditID, stage), so a redelivered batch does not alert twice. SIGTERM finishes the batches in
    hand, hands the partitions over and seals the store. `--health-listen` serves /healthz (the event
    loop answers), /readyz (200 once connected to NATS and in the pool, else 503 with the reason) and
    /metrics (Prometheus text).

    \b
    Examples:
      kubetrail worker --bus nats://127.0.0.1:4222 --lake /srv/lake --id w1
      kubetrail query --lake /srv/lake 'resource=secrets verb=get'
    """
    require("nats", "kubetrail worker")
    configure_logging(log_level)
    from kubetrail.bus.health import parse_health_listen
    from kubetrail.bus.worker import Worker
    from kubetrail.detect import load_ruleset, rule_sources
    from kubetrail.gc_tuning import tune_for_streaming
    from kubetrail.pipeline.detection import default_rule_specs

    bus = parse_bus_url(bus_url, replicas=bus_replicas, partitions=bus_partitions)
    config = dataclasses.replace(bus, ack_wait_seconds=ack_wait)
    health = parse_health_listen(health_listen)
    specs = [] if rules == ("none",) else (list(rules) or default_rule_specs())
    ruleset = load_ruleset(rule_sources(specs)) if specs else None
    name = worker_id or socket.gethostname()
    worker = Worker(config, Path(lake), name, rules=ruleset, hostname=socket.gethostname(), max_keys=max_keys)
    tune_for_streaming(collect=True)
    asyncio.run(_run(worker, health))
    stats = worker.stats
    click.echo(
        f"kubetrail worker {worker.worker_id}: stopped; {stats.events:,} events stored "
        f"({stats.duplicates:,} duplicates, {stats.malformed:,} refused), {stats.alerts:,} alerts"
    )
