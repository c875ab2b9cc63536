"""The live half of `kubetrail demo`: `serve` on a store, fed by the generator through the webhook backend.

The generated requests go through the audit policy exactly as the apiserver would apply it, and what the
policy keeps is POSTed as EventLists by kubetrail's own implementation of the apiserver's webhook backend,
so the demo exercises the same path a real cluster does: receiver, write-ahead log, store, detection.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from kubetrail.emit.generator import GeneratorConfig, generate
from kubetrail.emit.kubeconfig import WebhookClientConfig
from kubetrail.emit.webhook import WebhookBackend
from kubetrail.model.event import Event
from kubetrail.model.microtime import parse_microtime
from kubetrail.policy.evaluate import CompiledPolicy
from kubetrail.policy.simulate import SimulationReport, Simulator
from kubetrail.serve.config import ServeConfig
from kubetrail.serve.server import BackgroundServer

BATCH_EVENTS = 400
DEMO_CLUSTER = "demo"
_PROGRESS_EVERY = 1024


@dataclass
class LiveResult:
    """What the live run did: the policy's report and what the receiver acknowledged."""

    report: SimulationReport
    url: str
    store: Path
    posted: int = 0
    acknowledged: int = 0
    failed: int = 0
    seconds: float = 0.0
    sealed_rows: int = 0
    alerts: list[tuple[str, str, int]] = field(default_factory=list)
    """(rule, priority, count) of what serve's detection raised, most frequent first."""

    @property
    def events_per_second(self) -> float:
        return self.acknowledged / self.seconds if self.seconds > 0 else 0.0


def _batches(events: Iterator[Event], size: int) -> Iterator[list[Event]]:
    batch: list[Event] = []
    for event in events:
        batch.append(event)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class LiveDemo:
    """Starts `serve` in this process, streams the policy's output into it, and keeps it up on request."""

    def __init__(self, config: GeneratorConfig, policy: CompiledPolicy, store: Path, *, host: str, port: int) -> None:
        self.config = config
        self.policy = policy
        self.server = BackgroundServer(ServeConfig(store=store, host=host, port=port, cluster=DEMO_CLUSTER))
        self.store = store
        self.url = ""

    def start(self) -> str:
        """Open the store and listen; returns the base URL."""
        self.url = self.server.start()
        return self.url

    def _recorded(self, simulator: Simulator, progress: Progress, task: object) -> Iterator[Event]:
        start = self.config.start
        for count, event in enumerate(generate(self.config), 1):
            if count % _PROGRESS_EVERY == 0:
                elapsed = (parse_microtime(event.stageTimestamp) - start).total_seconds()
                progress.update(task, completed=min(elapsed, self.config.duration))  # type: ignore[arg-type]
            written = simulator.add(event)
            if written is not None:
                yield written

    def feed(self, console: Console) -> LiveResult:
        """Generate, apply the policy, POST what it keeps; the progress line shows acknowledged events."""
        simulator = Simulator(self.policy)
        webhook = WebhookBackend(WebhookClientConfig(server=f"{self.url}/audit/{DEMO_CLUSTER}"))
        result = LiveResult(report=simulator.report(), url=self.url, store=self.store)
        began = time.monotonic()
        columns = (
            TextColumn("[bold]replaying the cluster into serve[/]"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} simulated s"),
            TextColumn("{task.fields[acked]:,} events acknowledged ({task.fields[rate]:,.0f}/s)"),
            TimeElapsedColumn(),
        )
        try:
            with Progress(*columns, console=console, transient=True) as progress:
                task = progress.add_task("feed", total=self.config.duration, acked=0, rate=0.0)
                for batch in _batches(self._recorded(simulator, progress, task), BATCH_EVENTS):
                    result.posted += len(batch)
                    if webhook.process_events(batch):
                        result.acknowledged += len(batch)
                    else:
                        result.failed += len(batch)
                    elapsed = time.monotonic() - began
                    progress.update(task, acked=result.acknowledged, rate=result.acknowledged / max(elapsed, 1e-9))
                progress.update(task, completed=self.config.duration)
        finally:
            webhook.shutdown()
        result.seconds = time.monotonic() - began
        result.report = simulator.report()
        result.alerts = self._alerts()
        return result

    def _alerts(self) -> list[tuple[str, str, int]]:
        """The alerts serve's detection stored for the replay (after it caught up with the stream)."""
        app = self.server.app
        if app.detection is None or app.store is None:
            return []
        app.detection.drain(timeout=60)
        rows = app.store.query_connection().execute(
            "SELECT rule, priority, count(*) AS n FROM alerts GROUP BY rule, priority ORDER BY n DESC, rule"
        )
        return [(str(rule), str(priority), int(count)) for rule, priority, count in rows.fetchall()]

    def stop(self) -> int:
        """Drain, seal and close the store; returns the rows sealed to Parquet."""
        return self.server.stop().sealed_rows


def wait_for_interrupt() -> None:
    """Block until Ctrl-C."""
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return
