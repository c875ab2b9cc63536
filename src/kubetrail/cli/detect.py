"""`kubetrail detect FILE...`: run detection rules over audit logs, Falco-compatible alerts out.

Reads every input the intake reads (native logs, EventLists, JSON arrays, gzip, rotated sets, EKS / GKE / AKS
exports); a refused record is reported with its file and line, counted and skipped. Rules run per request
(`OncePerRequest`), as in `serve` and `ingest`, so the alerts are the ones those store. Alerts go to stdout
(Falco's text lines, or its JSON with `-o json`); progress, notices and the per-rule summary go to stderr.
"""

from __future__ import annotations

import socket
import sys
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

import click

from kubetrail.cli.inputs import input_options
from kubetrail.errors import KubetrailError

if TYPE_CHECKING:  # the engine, rich and the outputs load when the command runs, not for `--help`
    from rich.console import Console

    from kubetrail.detect import Alert, Priority, StatefulDetector

# Falco's priorities, most severe first (kept equal to kubetrail.detect.Priority by a test), and its `info` alias
_PRIORITY_CHOICES = ["emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug", "info"]
_DEFAULT_MAX_KEYS = 100_000
"""kubetrail.detect.stateful.spec.DEFAULT_MAX_KEYS (kept equal by a test)."""


class DetectUsageError(KubetrailError):
    """A `kubetrail detect` invocation that cannot run as given."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass
class _Tally:
    events: int = 0
    malformed: int = 0
    alerts: int = 0
    failing: int = 0


def _rule_specs(rules: tuple[str, ...]) -> list[str]:
    from kubetrail.detect import BUILTIN, BUILTIN_RULES_DIR

    if rules:
        return list(rules)
    if BUILTIN_RULES_DIR.is_dir() and any(BUILTIN_RULES_DIR.glob("*.y*ml")):
        return [BUILTIN]
    raise DetectUsageError(
        "no rules given and no built-in ruleset is installed in this version",
        hint="pass --rules FILE|DIR, e.g. --rules k8s_audit_rules.yaml (Falco's rules load unchanged)",
    )


def _say(console: Console, text: str) -> None:
    """One plain line on stderr (never wrapped or styled), unless quiet."""
    console.print(text, soft_wrap=True, highlight=False, markup=False, emoji=False)


def _summary(
    console: Console,
    tally: _Tally,
    by_rule: Counter[tuple[str, Priority]],
    elapsed: float,
    stateful: list[StatefulDetector],
) -> None:
    from rich.table import Table

    from kubetrail.cli.text import plain

    rate = tally.events / elapsed if elapsed > 0 else 0.0
    counts = f"{tally.events} events, {tally.malformed} refused, {tally.alerts} alerts"
    _say(console, f"{counts} in {elapsed:.2f}s ({rate:,.0f} events/s)")
    if stateful:
        rules = [item for detector in stateful for item in detector.stats().values()]
        keys = sum(item.keys for item in rules)
        evictions = sum(item.evictions for item in rules)
        _say(console, f"stateful rules: {len(rules)}, {keys} keys held, {evictions} keys evicted by the key limit")
    if not by_rule:
        return
    table = Table(title="Alerts by rule", title_justify="left")
    table.add_column("rule")
    table.add_column("priority")
    table.add_column("alerts", justify="right")
    for (rule, priority), count in sorted(by_rule.items(), key=lambda item: (item[0][1], -item[1], item[0][0])):
        table.add_row(plain(rule), priority.label, str(count))
    console.print(table)


@click.command(name="detect")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--rules",
    "rules",
    multiple=True,
    metavar="FILE|DIR",
    help="Falco or Sigma rules file, or a directory of them (repeatable, in order); `builtin`: the built-in set.",
)
@click.option(
    "--rule-matching",
    type=click.Choice(["first", "all"]),
    default="all",
    show_default=True,
    help="`first`: one alert per event, the first matching rule (Falco's default); `all`: every matching rule.",
)
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="`text`: Falco's alert lines; `json`: one Falco JSON alert per line (with auditID and cluster).",
)
@click.option(
    "--fail-on",
    type=click.Choice(_PRIORITY_CHOICES, case_sensitive=False),
    default=None,
    help="Exit with code 1 when any alert has this priority or a more severe one (for CI).",
)
@click.option(
    "--min-priority",
    type=click.Choice(_PRIORITY_CHOICES, case_sensitive=False),
    default="debug",
    show_default=True,
    help="Only load rules at this priority or more severe (Falco's `priority` setting).",
)
@click.option("--cluster", default="", help="Cluster name for the alerts and for `ka.cluster.name`.")
@click.option(
    "--time-format",
    type=click.Choice(["iso8601", "time"]),
    default="iso8601",
    show_default=True,
    help="Alert line prefix: full ISO 8601 time (Falco's container default) or time of day (UTC).",
)
@click.option("--outputs", "outputs_file", type=click.Path(dir_okay=False), help="Also send alerts to these outputs.")
@click.option(
    "--allow",
    "allow_file",
    type=click.Path(dir_okay=False),
    help="Allow-list file: drop alerts for these users, groups, namespaces, images or address ranges.",
)
@click.option(
    "--max-keys",
    type=click.IntRange(min=1),
    default=_DEFAULT_MAX_KEYS,
    show_default=True,
    help="Keys each stateful rule keeps at most (a rule's own max_keys wins); the least recent are evicted.",
)
@input_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, notices or summary on stderr.")
def detect_command(
    files: tuple[str, ...],
    rules: tuple[str, ...],
    rule_matching: str,
    output: str,
    fail_on: str | None,
    min_priority: str,
    cluster: str,
    time_format: str,
    outputs_file: str | None,
    allow_file: str | None,
    max_keys: int,
    input_format: str,
    strict: bool,
    quiet: bool,
) -> None:
    """Run detection rules over audit log FILES and print alerts.

    FILES are audit logs as the log backend writes them (NDJSON), EventList or JSON-array documents,
    gzip-compressed or not, directories or globs of rotated logs, or EKS / GKE / AKS exports; `-` reads
    stdin. Falco's k8s_audit rule files and Sigma Kubernetes audit rules load unchanged. Each rule alerts
    once per request, whichever stages the audit policy kept. Exit code 1 when an alert reaches --fail-on
    (or a record was refused, with --strict), 2 on unusable rules or input.

    \b
    Examples:
      kubetrail detect audit.log --rules k8s_audit_rules.yaml
      kubetrail detect audit.log.gz --rules rules/ --rule-matching first -o json
      kubetrail detect audit-*.log --rules k8s_audit_rules.yaml --fail-on warning
      kubetrail detect gke-audit.json eks-export-000000.gz
    """
    import time

    from rich.console import Console

    from kubetrail.alert.config import load_outputs
    from kubetrail.cli.inputs import InputFiles
    from kubetrail.detect import Engine, EventContext, Matching, Priority, TimeFormat, load_ruleset, rule_sources
    from kubetrail.detect.allowlist import load_allowlist
    from kubetrail.detect.requests import OncePerRequest
    from kubetrail.gc_tuning import tune_for_streaming

    console = Console(stderr=True, quiet=quiet)
    ruleset = load_ruleset(rule_sources(_rule_specs(rules)))
    for notice in ruleset.notices:
        _say(console, f"notice: {notice}")
    hostname = socket.gethostname()
    stateful = ruleset.detectors(
        Priority.parse(min_priority), max_keys=max_keys, hostname=hostname, time_format=TimeFormat(time_format)
    )
    engine = Engine(
        ruleset,
        matching=Matching(rule_matching),
        hostname=hostname,
        min_priority=Priority.parse(min_priority),
        time_format=TimeFormat(time_format),
        detectors=stateful,
    )
    outputs = load_outputs(outputs_file, block=True) if outputs_file else None
    allow = load_allowlist(allow_file) if allow_file else None
    for unknown in (
        allow.unknown_rules([*(r.name for r in ruleset.rules), *(s.name for s in ruleset.stateful)]) if allow else []
    ):
        _say(console, f"notice: {allow_file}: allow-list names rule '{unknown}', which is not loaded")
    threshold = Priority.parse(fail_on) if fail_on else None
    tally = _Tally()
    by_rule: Counter[tuple[str, Priority]] = Counter()
    out = sys.stdout.buffer
    as_json = output == "json"
    inputs = InputFiles(files, input_format=input_format, console=console, progress=False if quiet else None)
    per_request = OncePerRequest(engine)
    tune_for_streaming()
    started = time.perf_counter()
    for event, raw, found_cluster in inputs.events():
        tally.events += 1
        ctx = EventContext(event, cluster or found_cluster or "", raw)
        alerts = per_request.detect(ctx)
        if allow is not None:
            alerts = allow.filter(alerts, ctx)
        if alerts:
            _emit(alerts, out, as_json, tally, by_rule, threshold)
            if outputs is not None:
                outputs.send(alerts)
    out.flush()
    tally.malformed = inputs.tally.rejected
    inputs.report(lambda text: _say(console, text))
    if outputs is not None:
        outputs.close()
        for line in outputs.summary():
            _say(console, line)
    _summary(console, tally, by_rule, time.perf_counter() - started, stateful)
    inputs.exit_if_strict(strict)
    if tally.failing:
        sys.exit(1)


def _emit(
    alerts: list[Alert],
    out: BinaryIO,
    as_json: bool,
    tally: _Tally,
    by_rule: Counter[tuple[str, Priority]],
    threshold: Priority | None,
) -> None:
    for alert in alerts:
        tally.alerts += 1
        by_rule[(alert.rule, alert.priority)] += 1
        if threshold is not None and alert.priority.at_least(threshold):
            tally.failing += 1
        out.write(alert.to_falco_json() if as_json else alert.output.encode())
        out.write(b"\n")
