"""`kubetrail demo`: serve fed by a generated cluster's traffic under an audit policy, reported per rule.

`policy_report` and `render_report` are the reusable parts (the server-starting demo builds on them).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from kubetrail.cli.demo_live import LiveDemo, LiveResult, wait_for_interrupt
from kubetrail.cli.generate import with_progress
from kubetrail.cli.text import line, plain
from kubetrail.emit.generator import SCENARIOS, GeneratorConfig, generate
from kubetrail.model.event import Level
from kubetrail.policy.describe import describe_rule, human_bytes
from kubetrail.policy.evaluate import CompiledPolicy, compile_policy
from kubetrail.policy.load import LoadedPolicy, load_policy
from kubetrail.policy.presets import load_preset
from kubetrail.policy.simulate import SimulationReport, Simulator
from kubetrail.serve.config import parse_listen

_LEVEL_STYLE = {
    Level.NONE: "dim",
    Level.METADATA: "cyan",
    Level.REQUEST: "yellow",
    Level.REQUEST_RESPONSE: "magenta",
}


def policy_report(config: GeneratorConfig, policy: CompiledPolicy, console: Console | None = None) -> SimulationReport:
    """Generate the configured stream and replay it through `policy`, with a progress bar on `console`."""
    simulator = Simulator(policy)
    stream = generate(config)
    if console is None:
        simulator.add_all(stream)
        return simulator.report()
    label = f"simulating a {config.nodes}-node cluster"
    simulator.add_all(with_progress(stream, config, console, label))
    return simulator.report()


def render_report(report: SimulationReport, policy: CompiledPolicy, console: Console, *, span_seconds: float) -> None:
    """Print the per-rule table and the totals (with bytes per day extrapolated from `span_seconds`)."""
    table = Table(title="What the policy records", title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("level", no_wrap=True)
    table.add_column("requests", justify="right", no_wrap=True)
    table.add_column("events", justify="right", no_wrap=True)
    table.add_column("bytes", justify="right", no_wrap=True)
    table.add_column("selectors", overflow="fold", ratio=1)
    rules = policy.policy.rules
    for stats in report.rules:
        assert stats.rule is not None
        style = _LEVEL_STYLE[stats.level]
        table.add_row(
            str(stats.rule),
            f"[{style}]{stats.level.value}[/]",
            f"{stats.requests:,}",
            f"{stats.events:,}",
            human_bytes(stats.bytes),
            plain(describe_rule(rules[stats.rule])),
        )
    missed = report.unmatched
    table.add_row("-", "[dim]None[/]", f"{missed.requests:,}", f"{missed.events:,}", "0 B", "(no rule matched)")
    table.add_section()
    table.add_row(
        "",
        "[bold]total[/]",
        f"{report.input_requests:,}",
        f"[bold]{report.events:,}[/]",
        f"[bold]{human_bytes(report.bytes)}[/]",
        f"{report.input_events:,} stage events in, {report.events:,} written",
    )
    console.print(table)
    per_event = report.bytes / report.events if report.events else 0
    share = 100 * report.events / max(report.input_events, 1)
    console.print(
        f"written: {report.events:,} of {report.input_events:,} stage events ({share:.0f}%), "
        f"{human_bytes(report.bytes)}, {human_bytes(per_event)} per event"
    )
    console.print(
        f"estimate: [bold]{human_bytes(report.bytes_per_day(span_seconds))} per day[/] "
        f"at this traffic ({report.input_requests:,} requests in {span_seconds:.0f} s)"
    )


def _load(policy_file: str | None) -> LoadedPolicy:
    return load_preset() if policy_file is None else load_policy(Path(policy_file))


def _report_live(result: LiveResult, console: Console) -> None:
    console.print(
        f"serve acknowledged [bold]{result.acknowledged:,}[/] of {result.posted:,} events posted "
        f"in {result.seconds:.1f} s ({result.events_per_second:,.0f} events/s)"
        + (f", [red]{result.failed:,} not delivered[/]" if result.failed else "")
    )


def _report_alerts(result: LiveResult, console: Console) -> None:
    if not result.alerts:
        console.print("detection: no alerts")
        return
    table = Table(title="What detection raised (built-in rules)", title_justify="left")
    table.add_column("rule", overflow="fold")
    table.add_column("priority", no_wrap=True)
    table.add_column("alerts", justify="right", no_wrap=True)
    for rule, priority, count in result.alerts:
        table.add_row(plain(rule), plain(priority), f"{count:,}")
    console.print(table)


def _next_steps(store: Path, url: str, console: Console, *, serving: bool) -> None:
    console.print(line("store: ", (str(store), "bold"), " (Parquet + write-ahead log, tamper-evident manifest)"))
    console.print(line(f"  kubetrail verify --store {store}"))
    console.print(line(f"  kubetrail investigate exec --store {store}"))
    if serving:
        console.print(
            line(
                "serving ", (f"{url}/ui/", "bold"), f" (web UI) until Ctrl-C; POST audit events to {url}/audit/CLUSTER"
            )
        )


@click.command(name="demo")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), help="Audit policy (default: the sample).")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed: same seed, same stream.")
@click.option("--nodes", type=click.IntRange(1, 5000), default=3, show_default=True, help="Cluster nodes.")
@click.option("--rate", type=click.FloatRange(min=0.1), default=25.0, show_default=True, help="Requests per second.")
@click.option("--duration", type=click.FloatRange(min=1), default=600.0, show_default=True, help="Simulated seconds.")
@click.option("--no-attacks", is_flag=True, help="Background traffic only, without the attack scenarios.")
@click.option(
    "--store",
    "store_dir",
    type=click.Path(file_okay=False),
    help="Store directory for serve (default: a new temporary directory, kept afterwards).",
)
@click.option("--listen", default="127.0.0.1:0", show_default=True, help="Where serve listens (port 0: any free port).")
@click.option(
    "--serve/--no-serve",
    "live",
    default=True,
    show_default=True,
    help="Start serve and feed it; --no-serve only prints what the policy records.",
)
@click.option(
    "--keep-serving/--exit",
    default=None,
    help="After the replay, keep serving until Ctrl-C (default when run in a terminal).",
)
def demo_command(
    policy_file: str | None,
    seed: int,
    nodes: int,
    rate: float,
    duration: float,
    no_attacks: bool,
    store_dir: str | None,
    listen: str,
    live: bool,
    keep_serving: bool | None,
) -> None:
    """Run kubetrail on a generated cluster: serve, store, and what the audit policy records.

    Starts `kubetrail serve` on a temporary store, generates ten minutes of a 3-node cluster
    (controllers, kubelets, kube-proxy, CI, people and attacks: exec into pods, privileged pods,
    secret harvesting, RBAC escalation, anonymous access, token theft, permission enumeration), runs
    it through the audit policy as the apiserver would and POSTs what the policy keeps to serve
    through the apiserver's webhook protocol. Then prints, per policy rule, the requests it matched,
    the events written at its level and their size, with a per-day estimate.

    \b
    Examples:
      kubetrail demo
      kubetrail demo --policy audit-policy.yaml --store ./demo-store
      kubetrail demo --nodes 20 --rate 200 --duration 3600 --seed 7
      kubetrail demo --no-serve          # the policy table only
    """
    loaded = _load(policy_file)
    console = Console() if sys.stdout.isatty() else Console(width=120)
    err = Console(stderr=True)
    for warning in loaded.warnings:
        err.print(line(("warning:", "yellow"), " ", str(warning)))
    config = GeneratorConfig(
        seed=seed,
        nodes=nodes,
        rate=rate,
        duration=duration,
        scenarios=() if no_attacks else SCENARIOS,
    )
    compiled = compile_policy(loaded.policy)
    if not live:
        report = policy_report(config, compiled, err)
        console.print(line("policy: ", (loaded.source, "bold"), f"  ({len(compiled)} rules)"))
        render_report(report, compiled, console, span_seconds=config.duration)
        return
    host, port = parse_listen(listen, field="--listen")
    store = Path(store_dir) if store_dir else Path(tempfile.mkdtemp(prefix="kubetrail-demo-"))
    demo = LiveDemo(config, compiled, store, host=host, port=port)
    url = demo.start()
    err.print(line("kubetrail serve listening on ", (url, "bold"), f", store {store}"))
    serving = keep_serving if keep_serving is not None else (sys.stdin.isatty() and sys.stdout.isatty())
    try:
        result = demo.feed(err)
        console.print(line("policy: ", (loaded.source, "bold"), f"  ({len(compiled)} rules)"))
        render_report(result.report, compiled, console, span_seconds=config.duration)
        _report_live(result, console)
        _report_alerts(result, console)
        _next_steps(store, url, console, serving=serving)
        if serving:
            wait_for_interrupt()
    finally:
        sealed = demo.stop()
    console.print(line(f"serve stopped: {sealed:,} events sealed to Parquet in {store}"))
