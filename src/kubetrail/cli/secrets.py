"""`kubetrail secrets scan|redact`: secret material that should not be in audit logs, found or removed.

Findings never show a value: each names the file, line, auditID, JSON path and kind, with the first
12 hex digits of the value's SHA-256 so equal values can be told apart.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import click

from kubetrail.intake import expand_inputs
from kubetrail.secrets import Finding, SecretsError, redact_file, scan_file, scan_text
from kubetrail.store import Store


def _from_store(store_dir: str) -> Iterator[Finding]:
    with Store.open(store_dir, read_only=True) as store:
        connection = store.query_connection()
        try:
            cursor = connection.execute("SELECT event FROM events ORDER BY time")
            while rows := cursor.fetchmany(4096):
                for (text,) in rows:
                    findings, _ = scan_text(text, store_dir, None)
                    yield from findings
        finally:
            connection.close()


def _print(finding: Finding, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(finding.as_dict()))
        return
    where = finding.source if finding.line is None else f"{finding.source}:{finding.line}"
    click.echo(f"{where}  {finding.audit_id}  {finding.kind:<24} {finding.path}  sha256:{finding.sha256}")


@click.group(name="secrets")
def secrets_group() -> None:
    """Find secret material in audit logs, and write copies with it redacted.

    \b
    Examples:
      kubetrail secrets scan /var/log/kubernetes/audit/audit.log
      kubetrail secrets scan --store ./store -o json
      kubetrail secrets redact audit.log -o audit.redacted.log
    """


@secrets_group.command(name="scan")
@click.argument("inputs", nargs=-1, metavar="LOG…")
@click.option("--store", "store_dir", type=click.Path(file_okay=False, exists=True), help="Scan a store instead.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def scan_command(inputs: tuple[str, ...], store_dir: str | None, output: str) -> None:
    """Report secrets in audit logs: where they are and what kind, never their values.

    Looks for Secret `data`/`stringData` in request and response bodies (also in lists and in
    kubectl's last-applied-configuration annotation), TokenReview and TokenRequest tokens, credential-named
    ConfigMap keys and container env values, credentials in requestURI query parameters, and patterns in
    any body string: private keys (PEM), AWS access keys, JWTs, GitHub and Slack tokens, URL passwords,
    `password=`/`secret=` assignments. `-o json` prints one finding per line (file, line, auditID, path,
    kind, sha256). Exit code 1 when anything was found, 0 when clean.

    \b
    Examples:
      kubetrail secrets scan audit.log audit-2026-03-19T10-00-00.000.log.gz
      kubetrail secrets scan --store /var/lib/kubetrail -o json | jq -r .kind | sort | uniq -c
    """
    if bool(inputs) == bool(store_dir):
        raise SecretsError("give LOG files or --store DIR", hint="e.g. kubetrail secrets scan audit.log")
    counts: Counter[str] = Counter()
    if store_dir:
        findings: Iterator[Finding] = _from_store(store_dir)
    else:
        findings = (finding for path in expand_inputs(list(inputs)) for finding in scan_file(path))
    for finding in findings:
        counts[finding.kind] += 1
        _print(finding, output)
    if output == "text":
        total = sum(counts.values())
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items()))
        click.echo(f"{total} secret(s) found" + (f": {kinds}" if kinds else ""), err=True)
    if counts:
        sys.exit(1)


@secrets_group.command(name="redact")
@click.argument("inputs", nargs=-1, required=True, metavar="LOG…")
@click.option("-o", "--output", "output", required=True, help="Output file, or a directory for several LOGs.")
def redact_command(inputs: tuple[str, ...], output: str) -> None:
    """Write copies of audit logs with every secret value replaced by `REDACTED:sha256:<prefix>`.

    Only the secret characters change: every other byte, the JSON structure and the number of lines stay
    as they were. A gzip'd LOG is read transparently; the output is gzip'd when its name ends in `.gz`.
    With several LOGs, OUT is a directory that gets one file per LOG, under the same name.

    \b
    Examples:
      kubetrail secrets redact audit.log -o audit.redacted.log
      kubetrail secrets redact /var/log/kubernetes/audit/ -o ./redacted/
    """
    files = expand_inputs(list(inputs))
    target = Path(output)
    into_directory = len(files) > 1 or target.is_dir() or output.endswith("/")
    if into_directory:
        target.mkdir(parents=True, exist_ok=True)
    total = 0
    for path in files:
        destination = target / path.name if into_directory else target
        if destination.resolve() == path.resolve():
            raise SecretsError("the output would overwrite the input", source=str(path), hint="choose another -o")
        found = redact_file(path, destination)
        total += len(found)
        click.echo(f"{path} → {destination}: {len(found)} value(s) redacted", err=True)
    if not files:
        raise SecretsError("no input files", hint="check the LOG arguments")
    click.echo(f"{total} value(s) redacted in {len(files)} file(s)", err=True)
