"""`kubetrail policy diff A B LOG…`: two policies on the same events — what each records, bytes, coverage."""

from __future__ import annotations

import sys
from typing import Any

import click
import msgspec
from rich.console import Console
from rich.table import Table

from kubetrail.cli.inputs import input_options
from kubetrail.cli.policy_inputs import InputTally, active_rules, exit_if_strict, recorded_events, report_skipped
from kubetrail.cli.policy_simulate import coverage_record, load_checked
from kubetrail.cli.text import line, plain
from kubetrail.coverage import CoverageAnalyzer, CoverageReport
from kubetrail.policy.describe import human_bytes
from kubetrail.policy.diff import CallerKey, PolicyDiff
from kubetrail.policy.simulate import SimulationReport, Simulator


def _signed_bytes(value: float) -> str:
    return ("+" if value >= 0 else "-") + human_bytes(abs(value))


def _coverage_changes(a: CoverageReport, b: CoverageReport) -> list[dict[str, Any]]:
    """Per detection rule whose firing differs between the policies."""
    names = {rule.name: rule for rule in a.rules}
    changes: list[dict[str, Any]] = []
    for rule_b in b.rules:
        rule_a = names.get(rule_b.name)
        if rule_a is None:
            continue
        fields_a, fields_b = set(rule_a.lost_fields), set(rule_b.lost_fields)
        if rule_a.fired_recorded == rule_b.fired_recorded and fields_a == fields_b:
            continue
        changes.append(
            {
                "rule": rule_b.name,
                "firedFull": rule_b.fired_full,
                "firedUnderA": rule_a.fired_recorded,
                "firedUnderB": rule_b.fired_recorded,
                "fieldsLostOnlyUnderA": sorted(fields_a - fields_b),
                "fieldsLostOnlyUnderB": sorted(fields_b - fields_a),
            }
        )
    return changes


def _callers(counter: Any, top: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key, count in counter.most_common(top):
        user, verb, resource = key
        rows.append({"user": user, "verb": verb, "resource": resource, "events": count})
    return rows


def _caller_table(title: str, rows: list[tuple[CallerKey, int]], console: Console) -> None:
    if not rows:
        console.print(f"{title}: none")
        return
    table = Table(title=title, title_justify="left")
    for name in ("user", "verb", "resource", "events"):
        table.add_column(name, justify="right" if name == "events" else "left")
    for (user, verb, resource), count in rows:
        table.add_row(plain(user), plain(verb), plain(resource), f"{count:,}")
    console.print(table)


def _render(
    names: tuple[str, str],
    reports: tuple[SimulationReport, SimulationReport],
    diff: PolicyDiff,
    coverage: list[dict[str, Any]] | None,
    top: int,
    console: Console,
) -> None:
    a, b = reports
    per_day_a, per_day_b = a.bytes_per_day(), b.bytes_per_day()
    console.print(line("A: ", (names[0], "bold"), f"  writes {a.events:,} events, {human_bytes(per_day_a)} per day"))
    console.print(line("B: ", (names[1], "bold"), f"  writes {b.events:,} events, {human_bytes(per_day_b)} per day"))
    console.print(f"B - A: {b.events - a.events:+,} events, {_signed_bytes(per_day_b - per_day_a)} per day")
    if diff.identical:
        console.print("both policies write the same events at the same levels")
    _caller_table(
        f"Recorded by A, not by B ({sum(diff.only_a.values()):,} events)", diff.only_a.most_common(top), console
    )
    _caller_table(
        f"Recorded by B, not by A ({sum(diff.only_b.values()):,} events)", diff.only_b.most_common(top), console
    )
    if diff.changed_callers:
        table = Table(title="Recorded by both at different levels", title_justify="left")
        for name in ("user", "verb", "resource", "A", "B", "events"):
            table.add_column(name, justify="right" if name == "events" else "left")
        for ((user, verb, resource), level_a, level_b), count in diff.changed_callers.most_common(top):
            table.add_row(plain(user), plain(verb), plain(resource), level_a.value, level_b.value, f"{count:,}")
        console.print(table)
    if coverage is None:
        return
    if not coverage:
        console.print("detection coverage: the same under both policies")
        return
    table = Table(title="Detection coverage differences", title_justify="left")
    for name in ("detection rule", "full", "under A", "under B", "fields lost only under A / B"):
        table.add_column(name, justify="right" if name in ("full", "under A", "under B") else "left")
    for change in coverage:
        lost = ", ".join(change["fieldsLostOnlyUnderA"]) or "-"
        lost += " / " + (", ".join(change["fieldsLostOnlyUnderB"]) or "-")
        table.add_row(
            plain(change["rule"]),
            str(change["firedFull"]),
            str(change["firedUnderA"]),
            str(change["firedUnderB"]),
            plain(lost),
        )
    console.print(table)


@click.command(name="diff")
@click.argument("policy_a", type=click.Path(dir_okay=False))
@click.argument("policy_b", type=click.Path(dir_okay=False))
@click.argument("logs", nargs=-1, metavar="[LOG]...")
@click.option("--store", "store_dir", type=click.Path(file_okay=False), help="Replay a kubetrail store's events too.")
@input_options
@click.option("--rules", multiple=True, metavar="FILE|DIR", help="Detection rules for coverage (default: built-in).")
@click.option("--no-coverage", is_flag=True, help="Skip the detection coverage comparison.")
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True, help="Callers to list.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def diff_command(
    policy_a: str,
    policy_b: str,
    logs: tuple[str, ...],
    store_dir: str | None,
    input_format: str,
    strict: bool,
    rules: tuple[str, ...],
    no_coverage: bool,
    top: int,
    output: str,
) -> None:
    """Compare POLICY_A and POLICY_B on the same recorded events.

    Lists the (user, verb, resource) callers one policy records and the other does not, those both
    record at different levels, the change in bytes per day, and the detection rules whose alerts or
    output fields differ between the two. Exit code 0 when both write the same, 1 when they differ.

    \b
    Examples:
      kubetrail policy diff old-policy.yaml new-policy.yaml audit.log
      kubetrail policy diff old.yaml new.yaml audit.log.gz --rules k8s_audit_rules.yaml -o json
    """
    console = Console() if sys.stdout.isatty() else Console(width=140)
    err = Console(stderr=True)
    loaded_a, compiled_a = load_checked(policy_a, err)
    loaded_b, compiled_b = load_checked(policy_b, err)
    ruleset, rules_note = active_rules(rules, no_coverage)
    simulators = (Simulator(compiled_a), Simulator(compiled_b))
    analyzers = None
    if ruleset is not None:
        analyzers = (CoverageAnalyzer(compiled_a, ruleset), CoverageAnalyzer(compiled_b, ruleset))
    diff = PolicyDiff()
    tally = InputTally()
    for event in recorded_events(logs, store_dir, tally, err, input_format):
        written_a = simulators[0].add(event)
        written_b = simulators[1].add(event)
        diff.add(event, written_a, written_b)
        if analyzers is not None:
            analyzers[0].add(event, compiled_a.evaluate_event(event), written_a)
            analyzers[1].add(event, compiled_b.evaluate_event(event), written_b)
    report_skipped(tally, err)
    reports = (simulators[0].report(), simulators[1].report())
    coverage = None
    if analyzers is not None:
        coverage = _coverage_changes(analyzers[0].report(), analyzers[1].report())
    if output == "json":
        record = {
            "a": {
                "policy": loaded_a.source,
                "events": reports[0].events,
                "bytesPerDay": round(reports[0].bytes_per_day()),
            },
            "b": {
                "policy": loaded_b.source,
                "events": reports[1].events,
                "bytesPerDay": round(reports[1].bytes_per_day()),
            },
            "onlyA": _callers(diff.only_a, top),
            "onlyB": _callers(diff.only_b, top),
            "levelChanges": [
                {"a": level_a.value, "b": level_b.value, "events": count}
                for (level_a, level_b), count in diff.level_changes.most_common()
            ],
            "coverage": coverage,
            "coverageLostUnderB": None
            if analyzers is None
            else coverage_record(analyzers[1].report(), compiled_b.policy),
            "rules": rules_note,
        }
        sys.stdout.write(msgspec.json.encode(record).decode() + "\n")
    else:
        _render((loaded_a.source, loaded_b.source), reports, diff, coverage, top, console)
        if coverage is None:
            console.print(line("detection coverage: ", rules_note))
    exit_if_strict(tally, strict)
    sys.exit(0 if diff.identical and not coverage else 1)
