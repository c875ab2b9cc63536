"""`kubetrail detect FILE...`: run detection rules over audit logs, Falco-compatible alerts out.

Reads NDJSON, EventList and JSON-array logs, gzip or not; a malformed event is reported with its
file and line, counted and skipped. Alerts go to stdout (Falco's text lines, or its JSON with
`-o json`); progress, notices and the per-rule summary go to stderr.
"""

from __future__ import annotations

import gzip
import socket
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from kubetrail.alert.config import load_outputs
from kubetrail.detect import (
    BUILTIN,
    BUILTIN_RULES_DIR,
    Alert,
    Engine,
    EventContext,
    Matching,
    Priority,
    StatefulDetector,
    TimeFormat,
    load_ruleset,
    rule_sources,
)
from kubetrail.detect.allowlist import load_allowlist
from kubetrail.detect.stateful.spec import DEFAULT_MAX_KEYS
from kubetrail.errors import KubetrailError
from kubetrail.model import Event, EventDecodeError, decode_document, read_events
from kubetrail.model.codec import GZIP_MAGIC, iter_lines

_PRIORITY_CHOICES = [priority.name.lower() for priority in Priority] + ["info"]
_SHOWN_MALFORMED = 20
_PROGRESS_EVERY = 4096


class DetectUsageError(KubetrailError):
    """A `kubetrail detect` invocation that cannot run as given."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Malformed:
    """An input event that could not be used, and where it was."""

    source: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.message}"


def _open(handle: BinaryIO) -> BinaryIO:
    head = handle.peek(2)[:2] if hasattr(handle, "peek") else b""
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[return-value]
    return handle


def _checked(event: Event, source: str, line: int | None) -> Event | Malformed:
    if not event.stageTimestamp:
        return Malformed(source, line, "event has no stageTimestamp (Falco drops such events)")
    return event


def _whole_document(path: str) -> Iterator[tuple[Event, bytes | None] | Malformed]:
    try:
        for event in read_events(path):
            checked = _checked(event, path, None)
            yield checked if isinstance(checked, Malformed) else (checked, None)
    except EventDecodeError as error:
        yield Malformed(error.source, error.line, error.message)


def read_input(path: str, handle: BinaryIO) -> Iterator[tuple[Event, bytes | None] | Malformed]:
    """Events of one input with their original line (when it held exactly one event), or what was wrong."""
    stream = _open(handle)
    first = True
    try:
        for number, line in iter_lines(stream, source=path):
            if first:
                first = False
                if line.lstrip().startswith(b"[") and path != "-":
                    yield from _whole_document(path)
                    return
            try:
                events = decode_document(line, source=path, line=number)
            except EventDecodeError as error:
                if number == 1 and "truncated" in error.message and path != "-":
                    yield from _whole_document(path)
                    return
                yield Malformed(path, number, error.message)
                continue
            raw = line if len(events) == 1 else None
            for event in events:
                checked = _checked(event, path, number)
                yield checked if isinstance(checked, Malformed) else (checked, raw)
    except EventDecodeError as error:
        yield Malformed(error.source, error.line, error.message)


@dataclass
class _Tally:
    events: int = 0
    malformed: int = 0
    alerts: int = 0
    failing: int = 0


def _rule_specs(rules: tuple[str, ...]) -> list[str]:
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
    rate = tally.events / elapsed if elapsed > 0 else 0.0
    counts = f"{tally.events} events, {tally.malformed} malformed, {tally.alerts} alerts"
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
        table.add_row(rule, priority.label, str(count))
    console.print(table)


@click.command(name="detect")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
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
    default=DEFAULT_MAX_KEYS,
    show_default=True,
    help="Keys each stateful rule keeps at most (a rule's own max_keys wins); the least recent are evicted.",
)
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
    quiet: bool,
) -> None:
    """Run detection rules over audit log FILES and print alerts.

    FILES are audit logs as the log backend writes them (NDJSON), EventList or JSON-array
    documents, gzip-compressed or not; `-` reads stdin. Falco's k8s_audit rule files and Sigma
    Kubernetes audit rules load unchanged. Exit code 1 when an alert reaches --fail-on, 2 on unusable rules.

    \b
    Examples:
      kubetrail detect audit.log --rules k8s_audit_rules.yaml
      kubetrail detect audit.log.gz --rules rules/ --rule-matching first -o json
      kubetrail detect audit-*.log --rules k8s_audit_rules.yaml --fail-on warning
    """
    import time

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
    shown = 0
    sizes = [Path(name).stat().st_size if name != "-" else 0 for name in files]
    started = time.perf_counter()
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=quiet or not console.is_terminal,
    ) as progress:
        task = progress.add_task("detect", total=sum(sizes) or None)
        done = 0
        for name, size in zip(files, sizes, strict=True):
            progress.update(task, description=Path(name).name if name != "-" else "stdin")
            handle = sys.stdin.buffer if name == "-" else open(name, "rb")  # noqa: SIM115
            try:
                for item in read_input(name, handle):
                    if isinstance(item, Malformed):
                        tally.malformed += 1
                        if shown < _SHOWN_MALFORMED:
                            _say(console, f"warning: skipped {item}")
                            shown += 1
                        continue
                    event, raw = item
                    tally.events += 1
                    ctx = EventContext(event, cluster, raw)
                    alerts = engine.detect(ctx)
                    if allow is not None:
                        alerts = allow.filter(alerts, ctx)
                    if alerts:
                        _emit(alerts, out, as_json, tally, by_rule, threshold)
                        if outputs is not None:
                            outputs.send(alerts)
                    if tally.events % _PROGRESS_EVERY == 0 and name != "-":
                        progress.update(task, completed=done + handle.tell())
            finally:
                if handle is not sys.stdin.buffer:
                    handle.close()
            done += size
            progress.update(task, completed=done)
    out.flush()
    if tally.malformed > shown:
        _say(console, f"warning: {tally.malformed - shown} more malformed events skipped")
    if outputs is not None:
        outputs.close()
        for line in outputs.summary():
            _say(console, line)
    _summary(console, tally, by_rule, time.perf_counter() - started, stateful)
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
