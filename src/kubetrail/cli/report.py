"""`kubetrail report compliance`: evidence for an assessor, per framework control, from the store."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from click.core import ParameterSource

from kubetrail.check import check_apiserver, read_config
from kubetrail.investigate.span import data_span, default_note, empty_hint, events_in
from kubetrail.query import parse_duration, parse_time
from kubetrail.query.source import Source, Window
from kubetrail.report import (
    FRAMEWORK_KEYS,
    FRAMEWORKS,
    Period,
    ReportError,
    Status,
    assess,
    collect_evidence,
    document,
    render_html,
    render_json,
    render_md,
)
from kubetrail.store import Store, verify_store
from kubetrail.store.layout import Layout


def resolve_time(text: str, now: datetime, option: str) -> datetime:
    """A `--since`/`--until` value: a duration back from `now` (30d, 12h) or an RFC 3339 time or date."""
    duration = parse_duration(text)
    if duration is not None:
        return now - duration
    moment = parse_time(text)
    if moment is None:
        raise ReportError(
            f"{text!r} is neither a duration nor a time", field=option, hint="use e.g. 30d, 12h or 2026-03-01T00:00Z"
        )
    return moment


def _period(since: str, until: str | None, now: datetime) -> Period:
    start = resolve_time(since, now, "--since")
    end = resolve_time(until, now, "--until") if until else now
    if end <= start:
        raise ReportError(
            f"the period is empty ({start.isoformat()} to {end.isoformat()})",
            field="--until",
            hint="--until must be after --since",
        )
    return Period(start, end)


def fit_period(source: Source, period: Period, *, explicit: bool, now: datetime) -> tuple[Period, str | None]:
    """The period to report on, and what to say about it: a default period holding no event while the store
    holds some becomes the data's own range (a note); an explicit one stays, with a hint naming the data's range."""
    window = Window(since=_iso(period.since), until=_iso(period.until))
    if events_in(source, window):
        return period, None
    span = data_span(source)
    if span is None:
        return period, None
    if explicit:
        return period, empty_hint(period.since, period.until, span)
    note = default_note(span, now, now - period.since)
    return Period(span.first, span.last + timedelta(microseconds=1)), note


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@click.group(name="report")
def report_group() -> None:
    """Reports for people outside the on-call rotation: compliance evidence for assessors."""


@report_group.command(name="compliance")
@click.option("--framework", type=click.Choice(FRAMEWORK_KEYS), required=True, help="Control catalogue to report on.")
@click.option(
    "--store",
    "store_dir",
    envvar="KUBETRAIL_STORE",
    required=True,
    type=click.Path(file_okay=False, exists=True),
    help="Store directory (default: $KUBETRAIL_STORE).",
)
@click.option("--since", default="30d", show_default=True, help="Period start: a duration back from now or a time.")
@click.option("--until", help="Period end (default: now): a duration back from now or a time.")
@click.option(
    "--apiserver",
    "manifest",
    type=click.Path(dir_okay=False, exists=True),
    help="Also check this kube-apiserver manifest or flags file (as `kubetrail check apiserver`).",
)
@click.option(
    "--retention-days",
    type=click.IntRange(min=1),
    help="Days of history required (default: the framework's; see docs/compliance.md).",
)
@click.option("-o", "--output", type=click.Choice(["md", "json", "html"]), default="md", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="Write the report here instead of stdout.")
def compliance_command(
    framework: str,
    store_dir: str,
    since: str,
    until: str | None,
    manifest: str | None,
    retention_days: int | None,
    output: str,
    out: str | None,
) -> None:
    """Evidence, per control of FRAMEWORK, that audit logging is on, complete, retained and untampered.

    For the period: secret reads by user and namespace, RBAC changes, exec/attach/port-forward sessions,
    requests per day and days without any; for the whole store: the history held per cluster and the
    `kubetrail verify` result with the chain head; with --apiserver, the apiserver's audit settings. Each
    control is pass, fail or not-evidenced, with the reasons.

    \b
    Exit code: 0 when no control fails, 1 when any fails.

    \b
    Examples:
      kubetrail report compliance --framework pci-dss --store ./store --since 90d -o html --out pci.html
      kubetrail report compliance --framework cis --store ./store --apiserver kube-apiserver.yaml -o md
      kubetrail report compliance --framework soc2 --store ./store --since 2026-01-01 --until 2026-04-01 -o json
    """
    now = datetime.now(UTC)
    period = _period(since, until, now)
    findings = None
    if manifest:
        config = read_config(manifest)
        findings = check_apiserver(config, manifest_dir=Path(manifest).resolve().parent)
    layout = Layout(Path(store_dir))
    if not layout.manifest.exists() and not layout.wal_dir.is_dir():
        raise ReportError(
            f"{store_dir} is not a kubetrail store", field="--store", hint="pass the directory `kubetrail ingest` wrote"
        )
    integrity = verify_store(store_dir)
    store = Store.open(store_dir, read_only=True)
    try:
        conn = store.query_connection()
    finally:
        store.close(seal=False)
    try:
        source = Source(conn, description=store_dir)
        explicit = click.get_current_context().get_parameter_source("since") is not ParameterSource.DEFAULT
        period, message = fit_period(source, period, explicit=explicit or until is not None, now=now)
        if message:
            click.echo(message, err=True)
        evidence = collect_evidence(conn, period, verify=integrity, apiserver=findings, apiserver_source=manifest or "")
    finally:
        conn.close()
    assessment = assess(FRAMEWORKS[framework], evidence, required_days=retention_days)
    if output == "json":
        text = render_json(assessment, evidence, store=store_dir, generated=now) + "\n"
    else:
        doc = document(assessment, evidence, store=store_dir, generated=now)
        text = render_md(doc) if output == "md" else render_html(doc)
    if out:
        temporary = f"{out}.tmp"
        Path(temporary).write_text(text, encoding="utf-8")
        os.replace(temporary, out)
        counts = assessment.counts()
        click.echo(
            f"wrote {out}: {counts['pass']} pass, {counts['fail']} fail, {counts['not-evidenced']} not evidenced",
            err=True,
        )
    else:
        click.echo(text, nl=False)
    sys.exit(1 if any(item.status is Status.FAIL for item in assessment.controls) else 0)
