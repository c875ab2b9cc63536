"""`kubetrail verify --store DIR`: prove the sealed data is untampered, or name exactly what changed."""

from __future__ import annotations

import json
import sys

import click

from kubetrail.store import verify_store


@click.command(name="verify")
@click.option("--store", "store_dir", required=True, type=click.Path(file_okay=False), help="Store directory.")
@click.option(
    "--head",
    "expected_head",
    default=None,
    metavar="SHA256",
    help="A chain head recorded earlier (printed by a previous verify): fails if that entry is gone.",
)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify_command(store_dir: str, expected_head: str | None, output: str) -> None:
    """Check every sealed segment against the hash-chained manifest.

    Prints OK, or each segment that was altered, removed or added outside retention, each broken link of
    the manifest chain and each damaged WAL record. Exit code 0 when OK, 1 otherwise. Keep the printed
    head hash somewhere else (a ticket, a log): `--head` then also proves no entry was cut from the end.

    \b
    Example:
      kubetrail verify --store /var/lib/kubetrail
    """
    report = verify_store(store_dir, expected_head=expected_head)
    if output == "json":
        payload = {
            "ok": report.ok,
            "findings": [{"kind": item.kind, "path": item.path, "message": item.message} for item in report.findings],
            "notes": report.notes,
            "entries": report.entries,
            "files": report.files,
            "events": report.rows,
            "bytes": report.bytes,
            "removed_by_retention": report.removed_by_retention,
            "wal_segments": report.wal_segments,
            "head": report.head,
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        if report.ok:
            click.echo(
                f"OK: {report.files} sealed segments, {report.rows:,} events, {report.bytes:,} bytes; "
                f"{report.entries} manifest entries ({report.removed_by_retention} segments removed by retention); "
                f"{report.wal_segments} WAL segment(s) unsealed"
            )
        else:
            click.echo(f"FAILED: {len(report.findings)} problem(s)")
            for finding in report.findings:
                click.echo(f"  {finding.kind:<8} {finding.path}: {finding.message}")
        for note in report.notes:
            click.echo(f"  note: {note}")
        click.echo(f"head: {report.head}")
    if not report.ok:
        sys.exit(1)
