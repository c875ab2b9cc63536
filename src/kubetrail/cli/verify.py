"""`kubetrail verify --store DIR | --lake DIR`: prove the sealed data is untampered, or name exactly what changed.

A lake holds one store per worker, each with its own hash chain; they are verified together.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from kubetrail.store import Finding, verify_store


@click.command(name="verify")
@click.option("--store", "store_dir", type=click.Path(file_okay=False), help="Store directory.")
@click.option(
    "--lake",
    "lake_dir",
    type=click.Path(file_okay=False),
    help="A lake of worker stores (kubetrail worker --lake): every worker's chain, verified together.",
)
@click.option(
    "--head",
    "expected_head",
    default=None,
    metavar="SHA256",
    help="A chain head recorded earlier (printed by a previous verify): fails if that entry is gone.",
)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify_command(store_dir: str | None, lake_dir: str | None, expected_head: str | None, output: str) -> None:
    """Check every sealed segment against the hash-chained manifest.

    Prints OK, or each segment that was altered, removed or added outside retention, each broken link of
    the manifest chain and each damaged WAL record. Exit code 0 when OK, 1 otherwise. Keep the printed
    head hash somewhere else (a ticket, a log): `--head` then also proves no entry was cut from the end.
    Damage to the WAL fails until it is resolved: the store recovers the intact records when it opens and
    keeps the damaged segment as wal/N.wal.damaged; check that copy, then delete it or move it out of wal/.

    \b
    Examples:
      kubetrail verify --store /var/lib/kubetrail
      kubetrail verify --lake /srv/lake
    """
    if (store_dir is None) == (lake_dir is None):
        raise click.UsageError("pass --store DIR or --lake DIR")
    if lake_dir is not None:
        if expected_head is not None:
            raise click.UsageError("--head names one chain: verify one worker with --store LAKE/worker=ID --head …")
        _verify_lake(Path(lake_dir), output)
        return
    assert store_dir is not None
    report = verify_store(store_dir, expected_head=expected_head)
    if output == "json":
        payload = {
            "ok": report.ok,
            "findings": [_finding_json(item) for item in report.findings],
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
                if finding.hint:
                    click.echo(f"  {'':<8} hint: {finding.hint}")
        for note in report.notes:
            click.echo(f"  note: {note}")
        click.echo(f"head: {report.head}")
    if not report.ok:
        sys.exit(1)


def _finding_json(finding: Finding) -> dict[str, str]:
    payload = {"kind": finding.kind, "path": finding.path, "message": finding.message}
    if finding.hint:
        payload["hint"] = finding.hint
    return payload


def _verify_lake(lake: Path, output: str) -> None:
    """Verify each worker's store; exit 1 when any chain fails or the lake holds no worker store."""
    from kubetrail.bus.lake import worker_dirs

    directories = worker_dirs(lake)
    reports = [(directory.name.removeprefix("worker="), verify_store(directory)) for directory in directories]
    ok = bool(reports) and all(report.ok for _, report in reports)
    if output == "json":
        workers = [
            {
                "worker": name,
                "ok": report.ok,
                "findings": [_finding_json(item) for item in report.findings],
                "files": report.files,
                "events": report.rows,
                "entries": report.entries,
                "head": report.head,
            }
            for name, report in reports
        ]
        click.echo(json.dumps({"ok": ok, "workers": workers}, indent=2))
    else:
        for name, report in reports:
            if report.ok:
                click.echo(
                    f"OK      worker {name}: {report.files} sealed segments, {report.rows:,} events, "
                    f"{report.entries} manifest entries, head {report.head}"
                )
            else:
                click.echo(f"FAILED  worker {name}: {len(report.findings)} problem(s)")
                for finding in report.findings:
                    click.echo(f"          {finding.kind:<8} {finding.path}: {finding.message}")
                    if finding.hint:
                        click.echo(f"          {'':<8} hint: {finding.hint}")
        if not reports:
            click.echo(f"FAILED: {lake} holds no worker store")
        else:
            rows = sum(report.rows for _, report in reports)
            verdict = "OK" if ok else "FAILED"
            click.echo(f"{verdict}: {len(reports)} worker chain(s), {rows:,} sealed events")
    if not ok:
        sys.exit(1)
