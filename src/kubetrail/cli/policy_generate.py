"""`kubetrail policy generate --preset NAME [--cluster-log LOG]`: a commented policy, optionally tuned to traffic."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from kubetrail.cli.inputs import input_options
from kubetrail.cli.policy_inputs import InputTally, exit_if_strict, recorded_events, report_skipped
from kubetrail.policy.generate import generate_policy, load_generated, tune
from kubetrail.policy.lint import exit_code, lint_policy
from kubetrail.policy.presets import PRESETS


@click.command(name="generate")
@click.option(
    "--preset",
    type=click.Choice(PRESETS),
    default="recommended",
    show_default=True,
    help="minimal: metadata only; recommended: bodies of changes that matter; cis: the CIS benchmark's "
    "logging controls; paranoid: every change with its bodies.",
)
@click.option(
    "--cluster-log",
    "cluster_logs",
    multiple=True,
    metavar="LOG",
    help="Audit log of the cluster (repeatable; any input `detect` reads): drop the heaviest read-only system "
    "traffic the preset records.",
)
@click.option("--top", type=click.IntRange(1, 50), default=8, show_default=True, help="Most tuned rules to add.")
@click.option(
    "--min-share",
    type=click.FloatRange(0, 100),
    default=1.0,
    show_default=True,
    help="Only tune callers writing at least this percentage of the bytes.",
)
@click.option("-o", "--output", "output", default="-", show_default=True, help="Write the policy here (`-`: stdout).")
@input_options
def generate_command(
    preset: str,
    cluster_logs: tuple[str, ...],
    top: int,
    min_share: float,
    output: str,
    input_format: str,
    strict: bool,
) -> None:
    """Print a commented audit policy built from a preset.

    With --cluster-log, the kubelets', control-plane components' and kube-system service accounts'
    read-only requests (get, list, watch) that the preset still records and that write the most bytes
    are dropped by `level: None` rules placed first, each commented with its share of the log. Reads
    of Secrets, ConfigMaps, tokens and RBAC objects, exec/attach/portforward/proxy, writes of any kind,
    people and other callers are never tuned away. The output always loads, validates and lints clean.

    \b
    Examples:
      kubetrail policy generate --preset cis -o /etc/kubernetes/audit-policy.yaml
      kubetrail policy generate --preset recommended --cluster-log /var/log/kubernetes/audit.log
    """
    err = Console(stderr=True)
    tuned = None
    source = ", ".join(Path(name).name for name in cluster_logs)
    tally = InputTally()
    if cluster_logs:
        events = recorded_events(cluster_logs, None, tally, err, input_format)
        tuned = tune(preset, events, top=top, min_share=min_share / 100)
        report_skipped(tally, err)
    text = generate_policy(preset, tuned, source=source)
    findings = lint_policy(load_generated(text, preset))
    for finding in findings:
        err.print(f"lint: {finding}", soft_wrap=True, highlight=False, markup=False, emoji=False)
    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
        err.print(f"wrote the {preset} policy to {output}", highlight=False, markup=False, emoji=False)
    if tuned is not None:
        kept = text.count("  # tuned: ")
        err.print(f"tuned: {kept} noise rules from {source}", highlight=False, markup=False, emoji=False)
    exit_if_strict(tally, strict)
    sys.exit(exit_code(findings))
