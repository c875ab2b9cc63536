"""`kubetrail investigate …`: ready-made incident questions, answered with a summary first and the events after."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import yaml
from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from kubetrail.cli.query import fail, open_source, report_refused, source_options, window_of
from kubetrail.cli.text import line as text_line
from kubetrail.cli.text import plain
from kubetrail.investigate import (
    Report,
    anonymous,
    exec_sessions,
    forbidden,
    new_identities,
    object_history,
    rbac_changes,
    secrets,
    timeline,
)
from kubetrail.investigate.cascade import DEFAULT_HORIZON, INFERRED, Cascade, CascadeNode, build_cascade
from kubetrail.investigate.common import EXEC_SUBRESOURCES
from kubetrail.investigate.span import data_span, default_note, empty_hint, events_in, resolve
from kubetrail.query import QueryError, parse_duration
from kubetrail.query.output import FORMATS, print_table, records, write
from kubetrail.query.source import Source, Window

DEFAULT_TABLE_EVENTS = 20


def _render(report: Report, output: str, limit: int | None) -> None:
    events = report.events
    if output == "ndjson":
        write(events if not limit else events.slice(0, limit), "ndjson", sys.stdout, events=True)
        return
    if output == "csv":
        write(report.summary, "csv", sys.stdout)
        return
    if output in ("json", "yaml"):
        shown = events if not limit else events.slice(0, limit)
        rows = records(shown)
        for row in rows:
            if isinstance(row.get("event"), str):
                row["event"] = json.loads(row["event"])
        payload: dict[str, Any] = {
            "title": report.title,
            "filter": report.filter,
            "headline": report.headline,
            "requests": report.requests,
            "summary": records(report.summary),
            "events": rows,
        }
        if output == "json":
            click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        else:
            click.echo(yaml.safe_dump(payload, sort_keys=False, allow_unicode=True), nl=False)
        return
    count = DEFAULT_TABLE_EVENTS if limit is None else limit
    click.secho(report.title, bold=True)
    for line in report.headline:
        click.echo(f"  {line}")
    click.echo(f"  filter: {report.filter}")
    click.echo()
    if report.summary.num_rows:
        print_table(report.summary, sys.stdout)
        click.echo()
    hidden = ["event", "audit_id", "level"]
    if "cluster" in events.column_names and len(set(events.column("cluster").to_pylist())) <= 1:
        hidden.append("cluster")
    detail = events.drop_columns([name for name in hidden if name in events.column_names])
    if detail.num_rows:
        shown = detail if not count else detail.slice(0, count)
        print_table(shown, sys.stdout, title=f"Events ({shown.num_rows:,} of {detail.num_rows:,}, oldest first)")
        if shown.num_rows < detail.num_rows:
            click.echo(
                f"(--limit 0 shows all; -o ndjson prints the events themselves; `kubetrail query '{report.filter}'`)"
            )


def _output_options(function: Callable[..., None]) -> Callable[..., None]:
    function = click.option(
        "--limit",
        type=click.IntRange(min=0),
        default=None,
        help=f"Events to show (0 = all)  [default: {DEFAULT_TABLE_EVENTS} in a table, all otherwise]",
    )(function)
    return click.option("-o", "--output", type=click.Choice(FORMATS), default="table", show_default=True)(function)


def window_notes(source: Source, window: Window, *, empty: bool, now: datetime, tail: bool = False) -> list[str]:
    """What to say on stderr about the window: the data's own range when nothing is recent (no --since/--until),
    or where the data lies when an explicit window holds no event at all."""
    if not window.since and not window.until:
        note = default_note(data_span(source, window.cluster), now, tail=tail)
        return [note] if note else []
    if not empty or events_in(source, window):
        return []
    hint = empty_hint(resolve(window.since, now), resolve(window.until, now), data_span(source, window.cluster))
    return [hint] if hint else []


def _run(
    build: Callable[[Source, Window, bool], Report],
    options: dict[str, Any],
    *,
    tail: bool = False,
) -> None:
    files = options["files"]
    try:
        window = window_of(options["since"], options["until"], options["cluster"], files)
        window.terms()
        with open_source(options["store_dir"], files, options["cluster"], options["input_format"]) as source:
            report = build(source, window, options["output"] in ("ndjson", "json", "yaml"))
            empty = report.events.num_rows == 0 and report.summary.num_rows == 0
            notes = window_notes(source, window, empty=empty, now=datetime.now(UTC), tail=tail)
            tally = source.tally
    except QueryError as error:
        fail(error)
        return
    for note in notes:
        click.echo(note, err=True)
    _render(report, options["output"], options["limit"])
    report_refused(tally, strict=options["strict"])


@click.group(name="investigate")
def investigate_group() -> None:
    """Answer incident questions: who read secrets, what was forbidden, who exec'd, RBAC changes, …

    Every sub-command reads the store (--store) or log files in place (--file), prints a summary first
    and the events after; -o ndjson prints the events themselves, -o json both.

    \b
    Examples:
      kubetrail investigate secrets --store ./store --since 1h
      kubetrail investigate forbidden --file /var/log/kubernetes/audit/audit.log
      kubetrail investigate timeline --user jane@example.com --store ./store
      kubetrail investigate object deployments/prod/web --store ./store
      kubetrail investigate cascade 6f1c2d3e-… --store ./store
    """


@investigate_group.command(name="secrets")
@source_options
@_output_options
def secrets_command(**options: Any) -> None:
    """Who read or listed secrets (get, list, watch), by user and namespace."""
    _run(lambda source, window, events: secrets(source, window, events=events), options)


@investigate_group.command(name="forbidden")
@source_options
@_output_options
def forbidden_command(**options: Any) -> None:
    """Requests denied with 403 Forbidden, by user, verb and resource."""
    _run(lambda source, window, events: forbidden(source, window, events=events), options)


@investigate_group.command(name="exec")
@source_options
@_output_options
@click.option(
    "--subresource",
    "subresources",
    multiple=True,
    type=click.Choice(EXEC_SUBRESOURCES),
    help="Only these (repeatable)  [default: exec, attach and portforward]",
)
def exec_command(subresources: tuple[str, ...], **options: Any) -> None:
    """exec, attach and port-forward into pods, by user and pod."""
    _run(
        lambda source, window, events: exec_sessions(source, window, subresources or EXEC_SUBRESOURCES, events=events),
        options,
    )


@investigate_group.command(name="rbac")
@source_options
@_output_options
def rbac_command(**options: Any) -> None:
    """Changes (create, update, patch, delete) to roles, bindings, cluster roles and cluster role bindings."""
    _run(lambda source, window, events: rbac_changes(source, window, events=events), options)


@investigate_group.command(name="anonymous")
@source_options
@_output_options
def anonymous_command(**options: Any) -> None:
    """Requests by unauthenticated users, by source address and client."""
    _run(lambda source, window, events: anonymous(source, window, events=events), options)


@investigate_group.command(name="new-identities")
@source_options
@_output_options
def new_identities_command(**options: Any) -> None:
    """Users and service accounts first seen in the window (default: the data's last 24 hours)."""
    _run(lambda source, window, events: new_identities(source, window, events=events), options, tail=True)


@investigate_group.command(name="timeline")
@click.option("--user", "identity", required=True, help="Username, or sa:NAMESPACE/NAME for a service account.")
@click.option("--gap", default="30m", show_default=True, help="A pause longer than this starts a new session.")
@source_options
@_output_options
def timeline_command(identity: str, gap: str, **options: Any) -> None:
    """Everything one identity did, in order, grouped into sessions."""
    pause = parse_duration(gap)
    if pause is None or pause <= timedelta(0):
        raise click.BadParameter(f"{gap!r} is not a duration (e.g. 30m, 2h)", param_hint="--gap")
    _run(lambda source, window, events: timeline(source, identity, window, gap=pause).report, options)


@investigate_group.command(name="object")
@click.argument("reference", metavar="KIND/NAMESPACE/NAME")
@click.option("--reads/--no-reads", default=False, help="Also list reads (get, list, watch) of the object.")
@source_options
@_output_options
def object_command(reference: str, reads: bool, **options: Any) -> None:
    """The history of one object: who created, changed and deleted it, with diffs of the recorded bodies.

    KIND is the resource (deployments, secrets, clusterroles, …); cluster-scoped objects are KIND/NAME.
    """
    _run(lambda source, window, events: object_history(source, reference, window, reads=reads).report, options)


def _node_json(node: CascadeNode) -> dict[str, Any]:
    request = node.request
    return {
        "audit_id": request.audit_id,
        "user": request.user,
        "verb": request.verb,
        "resource": request.resource,
        "subresource": request.subresource,
        "namespace": request.namespace,
        "name": request.name,
        "code": request.code,
        "first": request.first.isoformat(),
        "last": request.last.isoformat(),
        "stages": list(request.stages),
        "uri": request.uri,
        "reason": node.reason,
        "delay_seconds": node.delay.total_seconds(),
        "children": [_node_json(child) for child in node.children],
    }


def _label(node: CascadeNode, root: bool) -> Text:
    request = node.request
    target = "/".join(part for part in (request.resource, request.subresource) if part) or request.uri
    where = "/".join(part for part in (request.namespace, request.name) if part)
    delay = "" if root else f"+{node.delay.total_seconds():.3f}s  "
    weak = node.reason.startswith(INFERRED)
    parts: list[str | Text | tuple[str, str]] = [
        (delay, "dim"),
        (f"{request.verb} ", "bold"),
        plain(target),
        " ",
        plain(where, "cyan"),
        f"  {request.code if request.code is not None else '-'}  by ",
        plain(request.user, "green"),
    ]
    if not root:
        parts.extend(["  ", plain(f"[{node.reason}]", "yellow" if weak else "dim")])
    return text_line(*parts)


def _tree(node: CascadeNode, into: Tree) -> None:
    for child in node.children:
        _tree(child, into.add(_label(child, root=False)))


def _print_cascade(cascade: Cascade) -> None:
    root = cascade.root
    tree = Tree(_label(root, root=True))
    _tree(root, tree)
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=max(console.width, 220))  # piped: never crop a line
    console.print(tree)
    inferred = cascade.inferred()
    caused = cascade.count() - 1
    summary = f"{caused} request(s) followed within {_duration(cascade.horizon)}"
    if inferred:
        summary += f"; {inferred} linked by names and timing only (no bodies recorded): see docs/investigations.md"
    console.print(plain(summary, "dim"))


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


@investigate_group.command(name="cascade")
@click.argument("audit_id", metavar="AUDIT_ID")
@click.option(
    "--horizon",
    default=_duration(DEFAULT_HORIZON),
    show_default=True,
    help="How long after the request to look for what it caused.",
)
@source_options
@click.option("-o", "--output", type=click.Choice(["tree", "json"]), default="tree", show_default=True)
def cascade_command(audit_id: str, horizon: str, **options: Any) -> None:
    """What one write caused: the controllers' requests that followed it, as a tree.

    Follows owner references in the recorded bodies (Deployment → ReplicaSet → Pods → the scheduler's binding
    and the kubelet's status; an owner's deletion → the garbage collector's deletions), and falls back to the
    names controllers give their objects when the policy recorded no bodies (those links say `inferred`). An
    update or patch is credited only until a client changes the object again, and not with status writes the
    controllers were already making in the --horizon before it.
    --since/--until are not used: the window is the request's own time plus --horizon.

    \b
    Examples:
      kubetrail investigate cascade 2b1f…-…-… --store ./store
      kubetrail investigate cascade 2b1f…-…-… --file audit.log --horizon 30m -o json
    """
    span = parse_duration(horizon)
    if span is None or span <= timedelta(0):
        raise click.BadParameter(f"{horizon!r} is not a duration (e.g. 10m, 1h)", param_hint="--horizon")
    files = options["files"]
    try:
        with open_source(options["store_dir"], files, options["cluster"], options["input_format"]) as source:
            cascade = build_cascade(source, audit_id.strip(), horizon=span)
            tally = source.tally
    except QueryError as error:
        fail(error)
        return
    if cascade is None:
        click.echo(f"error: no request with auditID {audit_id[:100]!r} in the events read", err=True)
        click.echo("hint: copy an auditID from `kubetrail query … --fields time,user,verb,name,id`", err=True)
        sys.exit(1)
    if options["output"] == "json":
        payload = {"horizon_seconds": span.total_seconds(), "nodes": cascade.count(), "root": _node_json(cascade.root)}
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        _print_cascade(cascade)
    report_refused(tally, strict=options["strict"])
