"""`kubetrail policy simulate POLICY LOG…`: what a policy would write, how big, how long it fits, what it hides.

Recorded events (ideally a log at RequestResponse level) are replayed through the policy as the apiserver
would record them: per-rule counts, events and bytes per day by level and stage, the noisiest callers,
the disk the log backend needs under `--audit-log-max*`, and detection coverage (rules that stop firing).
"""

from __future__ import annotations

import sys
from typing import Any

import click
import msgspec
from rich.console import Console
from rich.table import Table

from kubetrail.cli.demo import render_report
from kubetrail.cli.inputs import input_options
from kubetrail.cli.policy_inputs import InputTally, active_rules, exit_if_strict, recorded_events, report_skipped
from kubetrail.cli.text import line, plain, title
from kubetrail.coverage import Cause, CoverageAnalyzer, CoverageReport, RuleCoverage
from kubetrail.model.event import Level, Stage
from kubetrail.model.policy import Policy
from kubetrail.policy.describe import describe_rule, human_bytes
from kubetrail.policy.evaluate import CompiledPolicy, compile_policy
from kubetrail.policy.load import LoadedPolicy, load_policy
from kubetrail.policy.simulate import SimulationReport, Simulator
from kubetrail.policy.sizing import (
    DEFAULT_MAX_AGE_DAYS,
    DEFAULT_MAX_BACKUPS,
    DEFAULT_MAX_SIZE_MB,
    DiskEstimate,
    RotationSettings,
    estimate_disk,
)

_STAGE_ORDER = {stage: index for index, stage in enumerate(Stage)}


def rotation_options(function: Any) -> Any:
    """The `--audit-log-maxsize/maxbackup/maxage` options, as kube-apiserver 1.37 spells and defaults them."""
    function = click.option(
        "--audit-log-maxage",
        "max_age",
        type=click.IntRange(min=0),
        default=None,
        help=f"Days to keep backups (default {DEFAULT_MAX_AGE_DAYS}; 0: no age limit).",
    )(function)
    function = click.option(
        "--audit-log-maxbackup",
        "max_backup",
        type=click.IntRange(min=0),
        default=None,
        help=f"Backups to keep (default {DEFAULT_MAX_BACKUPS}; 0: all).",
    )(function)
    return click.option(
        "--audit-log-maxsize",
        "max_size",
        type=click.IntRange(min=0),
        default=None,
        help=f"MiB per file (default {DEFAULT_MAX_SIZE_MB}; 0: never rotate).",
    )(function)


def settings_from(max_size: int | None, max_backup: int | None, max_age: int | None) -> tuple[RotationSettings, str]:
    """The settings given on the command line; a flag left out takes kube-apiserver's default, as it would there."""
    given = {
        name: value
        for name, value in (("max_size_mb", max_size), ("max_backups", max_backup), ("max_age_days", max_age))
        if value is not None
    }
    settings = RotationSettings(**given)
    if not given:
        return settings, "kube-apiserver defaults (no --audit-log-max* given)"
    if len(given) < 3:
        return settings, "given settings, kube-apiserver defaults for the rest"
    return settings, "given settings"


def describe_cause(cause: Cause, policy: Policy) -> str:
    """`rule 3 (level: None; verbs=watch): level None` or `no rule: …`."""
    if cause.rule is None:
        return f"no rule matches: {cause.reason}"
    rule = policy.rules[cause.rule]
    return f"rule {cause.rule} ({rule.level}: {describe_rule(rule)}): {cause.reason}"


def coverage_record(report: CoverageReport, policy: Policy) -> list[dict[str, Any]]:
    """The rules the policy changes (lost alerts or fields, gained alerts) as JSON-ready records."""
    records: list[dict[str, Any]] = []
    for rule in report.changed:
        records.append(
            {
                "rule": rule.name,
                "priority": rule.priority,
                "firedFull": rule.fired_full,
                "firedUnderPolicy": rule.fired_recorded,
                "lostAlerts": rule.lost_events,
                "causes": [_cause_record(cause, count, policy) for cause, count in sorted(rule.lost.items())],
                "gainedAlerts": sum(rule.gained.values()),
                "gainCauses": [_cause_record(cause, count, policy) for cause, count in sorted(rule.gained.items())],
                "lostFields": {
                    key: [_cause_record(cause, count, policy) for cause, count in sorted(causes.items())]
                    for key, causes in sorted(rule.lost_fields.items())
                },
            }
        )
    return records


def _cause_record(cause: Cause, count: int, policy: Policy) -> dict[str, Any]:
    return {"policyRule": cause.rule, "reason": cause.reason, "events": count, "text": describe_cause(cause, policy)}


def _loss_summary(rule: RuleCoverage, policy: Policy) -> str:
    parts = [f"{count} events: {describe_cause(cause, policy)}" for cause, count in rule.lost.most_common()]
    for key, causes in sorted(rule.lost_fields.items()):
        cause, count = causes.most_common(1)[0]
        parts.append(f"{key} → <NA> (in {count} of its alerts: {describe_cause(cause, policy)})")
    for cause, count in rule.gained.most_common():
        parts.append(f"{count} new alerts, only on the recorded events: {describe_cause(cause, policy)}")
    return "\n".join(parts)


def render_coverage(report: CoverageReport | None, note: str, policy: Policy, console: Console) -> None:
    """The coverage table: every rule that loses alerts or fields, with the policy rule that causes it."""
    if report is None:
        console.print(line("detection coverage: ", note))
        return
    fired = sum(1 for rule in report.rules if rule.fired_full)
    degraded = report.changed
    if not degraded:
        console.print(
            line("detection coverage (", note, f"): all {fired} rules that fired on the full log still fire, intact")
        )
        return
    table = Table(title=title(f"Detection coverage lost ({note})"), title_justify="left")
    table.add_column("detection rule", overflow="fold")
    table.add_column("full", justify="right")
    table.add_column("policy", justify="right")
    table.add_column("lost because", overflow="fold", ratio=1)
    for rule in degraded:
        style = "red" if rule.blind else "yellow" if rule.degraded else "magenta"
        table.add_row(
            plain(rule.name, style),
            str(rule.fired_full),
            str(rule.fired_recorded),
            plain(_loss_summary(rule, policy)),
        )
    console.print(table)
    blind = sum(1 for rule in degraded if rule.blind)
    partial = sum(1 for rule in degraded if rule.degraded and not rule.blind)
    gaining = sum(1 for rule in degraded if rule.gained)
    console.print(
        f"coverage: {fired} rules fired on the full log; {blind} never fire under the policy, "
        f"{partial} lose alerts or output fields, {gaining} raise alerts only on the recorded events"
    )


def _level_stage_rows(report: SimulationReport) -> list[tuple[Level, Stage, int, int]]:
    rows = [(level, stage, tally.events, tally.bytes) for (level, stage), tally in report.by_level_stage.items()]
    return sorted(rows, key=lambda row: (row[0].rank, _STAGE_ORDER[row[1]]))


def render_volume(report: SimulationReport, console: Console, top: int) -> None:
    """Events and bytes per day by level and stage, then the noisiest (user, verb, resource) tuples."""
    table = Table(title="Written per day, by level and stage", title_justify="left")
    for name in ("level", "stage", "events", "bytes", "events/day", "bytes/day"):
        table.add_column(name, justify="left" if name in ("level", "stage") else "right", no_wrap=True)
    for level, stage, events, size in _level_stage_rows(report):
        table.add_row(
            level.value,
            stage.value,
            f"{events:,}",
            human_bytes(size),
            f"{report.per_day(events):,.0f}",
            human_bytes(report.per_day(size)),
        )
    console.print(table)
    noisy = Table(title=f"Top {top} noisiest (user, verb, resource)", title_justify="left")
    for name in ("user", "verb", "resource", "rule", "events", "bytes/day", "share"):
        noisy.add_column(name, justify="right" if name in ("rule", "events", "bytes/day", "share") else "left")
    for entry in report.top_tuples(top):
        share = 100 * entry.bytes / report.bytes if report.bytes else 0.0
        noisy.add_row(
            plain(entry.user),
            plain(entry.verb),
            plain(entry.resource),
            "-" if entry.rule is None else str(entry.rule),
            f"{entry.events:,}",
            human_bytes(report.per_day(entry.bytes)),
            f"{share:.1f}%",
        )
    console.print(noisy)


def render_disk(estimate: DiskEstimate, label: str, console: Console) -> None:
    """One paragraph: the rotation settings, the history they hold and the disk they need."""
    s = estimate.settings
    console.print(
        f"disk ({label}): --audit-log-maxsize={s.max_size_mb} --audit-log-maxbackup={s.max_backups} "
        f"--audit-log-maxage={s.max_age_days}"
    )
    if estimate.bytes_per_day <= 0:
        console.print("  history: the policy writes nothing, so the log takes no disk")
        return
    if estimate.days_of_history is None:
        growth = human_bytes(estimate.bytes_per_day)
        why = "rotation is off (maxsize 0)" if not s.rotates else "no backup is removed (maxbackup 0 and maxage 0)"
        console.print(f"  history: [red]unbounded[/] — {why}: the disk grows by {growth} per day until it fills")
        return
    verdict = "[green]meets[/]" if estimate.holds(30) else "[red]below[/]"
    console.print(
        f"  history always on disk: [bold]{estimate.days_of_history:.1f} days[/] (limited by {estimate.limited_by}; "
        f"{verdict} 30 days); peak disk {human_bytes(estimate.peak_bytes or 0)}; "
        f"{estimate.rotations_per_day:.1f} rotations per day"
    )


def disk_record(estimate: DiskEstimate) -> dict[str, Any]:
    """The disk estimate as a JSON-ready record."""
    s = estimate.settings
    return {
        "maxsize": s.max_size_mb,
        "maxbackup": s.max_backups,
        "maxage": s.max_age_days,
        "bytesPerDay": round(estimate.bytes_per_day),
        "rotationsPerDay": round(estimate.rotations_per_day, 3),
        "daysOfHistory": None if estimate.days_of_history is None else round(estimate.days_of_history, 3),
        "peakBytes": None if estimate.peak_bytes is None else round(estimate.peak_bytes),
        "limitedBy": estimate.limited_by,
    }


def simulation_record(report: SimulationReport, top: int) -> dict[str, Any]:
    """The simulation's numbers as a JSON-ready record."""
    return {
        "inputEvents": report.input_events,
        "inputRequests": report.input_requests,
        "events": report.events,
        "bytes": report.bytes,
        "spanSeconds": report.span_seconds,
        "bytesPerDay": round(report.bytes_per_day()),
        "rules": [
            {"rule": s.rule, "level": s.level.value, "requests": s.requests, "events": s.events, "bytes": s.bytes}
            for s in report.rules
        ],
        "unmatched": {"requests": report.unmatched.requests},
        "underRecorded": report.under_recorded,
        "byLevelStage": [
            {
                "level": level.value,
                "stage": stage.value,
                "events": events,
                "bytes": size,
                "eventsPerDay": round(report.per_day(events), 3),
                "bytesPerDay": round(report.per_day(size)),
            }
            for level, stage, events, size in _level_stage_rows(report)
        ],
        "top": [
            {
                "user": t.user,
                "verb": t.verb,
                "resource": t.resource,
                "rule": t.rule,
                "events": t.events,
                "bytes": t.bytes,
            }
            for t in report.top_tuples(top)
        ],
    }


def load_checked(path: str, err: Console) -> tuple[LoadedPolicy, CompiledPolicy]:
    """Load and validate a policy (errors end the command), printing its load warnings."""
    loaded = load_policy(path)
    for warning in loaded.warnings:
        err.print(line(("warning:", "yellow"), " ", str(warning)), soft_wrap=True)
    return loaded, compile_policy(loaded.policy)


@click.command(name="simulate")
@click.argument("policy_file", type=click.Path(dir_okay=False))
@click.argument("logs", nargs=-1, metavar="[LOG]...")
@click.option("--store", "store_dir", type=click.Path(file_okay=False), help="Replay a kubetrail store's events too.")
@rotation_options
@input_options
@click.option("--rules", multiple=True, metavar="FILE|DIR", help="Detection rules for coverage (default: built-in).")
@click.option("--no-coverage", is_flag=True, help="Skip the detection coverage analysis.")
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True, help="Noisy tuples to list.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def simulate_command(
    policy_file: str,
    logs: tuple[str, ...],
    store_dir: str | None,
    max_size: int | None,
    max_backup: int | None,
    max_age: int | None,
    input_format: str,
    strict: bool,
    rules: tuple[str, ...],
    no_coverage: bool,
    top: int,
    output: str,
) -> None:
    """Replay recorded events through POLICY_FILE as kube-apiserver would record them.

    LOGS should be recorded at RequestResponse level (a lower level cannot show what a richer policy
    would add). Prints per-rule counts, events and bytes per day by level and stage (extrapolated from
    the time the input spans), the noisiest (user, verb, resource) tuples, the history the log backend
    keeps under --audit-log-maxsize/maxbackup/maxage (kube-apiserver 1.37's 100/100/366 for those not given),
    and detection coverage: each rule that fires on the full events but not on the recorded ones, or
    prints fields that become <NA>, with the policy rule that causes the loss.

    \b
    Examples:
      kubetrail policy simulate audit-policy.yaml audit.log
      kubetrail policy simulate audit-policy.yaml audit.log.gz --audit-log-maxsize 200 --audit-log-maxbackup 5
      kubetrail policy simulate audit-policy.yaml --store /var/lib/kubetrail --rules k8s_audit_rules.yaml -o json
    """
    console = Console() if sys.stdout.isatty() else Console(width=140)
    err = Console(stderr=True)
    loaded, compiled = load_checked(policy_file, err)
    ruleset, rules_note = active_rules(rules, no_coverage)
    settings, settings_label = settings_from(max_size, max_backup, max_age)
    simulator = Simulator(compiled)
    analyzer = CoverageAnalyzer(compiled, ruleset) if ruleset is not None else None
    tally = InputTally()
    for event in recorded_events(logs, store_dir, tally, err, input_format):
        written = simulator.add(event)
        if analyzer is not None:
            analyzer.add(event, compiled.evaluate_event(event), written)
    report_skipped(tally, err)
    report = simulator.report()
    if report.under_recorded:
        err.print(
            f"warning: {report.under_recorded:,} events were recorded at a lower level than the policy asks for: "
            "their bodies are missing, so sizes are underestimated and coverage is partial (record at RequestResponse)",
            soft_wrap=True,
            highlight=False,
        )
    coverage = analyzer.report() if analyzer is not None else None
    estimate = estimate_disk(report.bytes_per_day(), settings)
    if output == "json":
        record = {
            "policy": loaded.source,
            "simulation": simulation_record(report, top),
            "disk": disk_record(estimate),
            "coverage": None if coverage is None else coverage_record(coverage, compiled.policy),
            "rules": rules_note,
        }
        sys.stdout.write(msgspec.json.encode(record).decode() + "\n")
        exit_if_strict(tally, strict)
        return
    console.print(line("policy: ", (loaded.source, "bold"), f"  ({len(compiled)} rules)"))
    render_report(report, compiled, console, span_seconds=report.span_seconds)
    render_volume(report, console, top)
    render_disk(estimate, settings_label, console)
    render_coverage(coverage, rules_note, compiled.policy, console)
    exit_if_strict(tally, strict)
