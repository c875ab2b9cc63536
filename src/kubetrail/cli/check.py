"""`kubetrail check apiserver MANIFEST`: audit logging settings of kube-apiserver against the CIS benchmark."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import msgspec

from kubetrail.check import Finding, Status, check_apiserver, read_config

_MARK = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.WARN: "WARN", Status.INFO: "INFO"}
_COLOR = {Status.PASS: "green", Status.FAIL: "red", Status.WARN: "yellow", Status.INFO: "blue"}


@click.group(name="check")
def check_group() -> None:
    """Check a cluster component's configuration for sound audit logging.

    \b
    Examples:
      kubetrail check apiserver /etc/kubernetes/manifests/kube-apiserver.yaml
    """


def _record(finding: Finding) -> dict[str, object]:
    return {
        "control": finding.control,
        "title": finding.title,
        "status": finding.status.value,
        "detail": finding.detail,
        "fix": finding.fix,
        "line": finding.line,
    }


@check_group.command(name="apiserver")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True),
    default="/",
    show_default=True,
    help="Where the control-plane node's filesystem is (files the flags name are read under it).",
)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def apiserver_command(manifest: str, root: str, output: str) -> None:
    """Check kube-apiserver's audit settings in MANIFEST (a static pod manifest or a file of flags).

    One finding per control: CIS 1.2.16 --audit-log-path set, 1.2.17 --audit-log-maxage >= 30,
    1.2.18 --audit-log-maxbackup >= 10, 1.2.19 --audit-log-maxsize >= 100, 3.2.1 --audit-policy-file
    set, readable through the pod's hostPath mounts and valid, 3.2.2 the policy lints without errors;
    plus the log and policy mounts, the apiserver's own validation of the --audit-log-* options, and
    the webhook's mode, truncation and kubeconfig. The policy and webhook kubeconfig are looked for
    at their hostPath location under --root, at the path itself, then beside MANIFEST.

    \b
    Exit code: 0 when nothing fails, 1 when any control fails, 2 when MANIFEST cannot be read.

    \b
    Examples:
      kubetrail check apiserver /etc/kubernetes/manifests/kube-apiserver.yaml
      kubetrail check apiserver kube-apiserver.flags -o json | jq '.findings[] | select(.status == "fail")'
    """
    config = read_config(manifest)
    findings = check_apiserver(config, root=Path(root), manifest_dir=Path(manifest).resolve().parent)
    counts = {status: sum(1 for f in findings if f.status is status) for status in Status}
    if output == "json":
        record = {
            "manifest": manifest,
            "findings": [_record(finding) for finding in findings],
            "summary": {status.value: count for status, count in counts.items()},
        }
        sys.stdout.write(msgspec.json.encode(record).decode() + "\n")
    else:
        for finding in findings:
            mark = click.style(_MARK[finding.status], fg=_COLOR[finding.status], bold=True)
            where = f" ({manifest}:{finding.line})" if finding.line else ""
            click.echo(f"{mark}  {finding.control:<19} {finding.title}{where}")
            click.echo(f"      {finding.detail}")
            if finding.fix and finding.status in (Status.FAIL, Status.WARN):
                click.echo(f"      fix: {finding.fix}")
        summary = ", ".join(f"{count} {status.value}" for status, count in counts.items() if count)
        click.echo(summary)
    sys.exit(1 if counts[Status.FAIL] else 0)
