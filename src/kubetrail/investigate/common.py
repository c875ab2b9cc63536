"""The grouped-by investigations: each one is a filter plus how to summarise what it selects."""

from __future__ import annotations

from collections.abc import Sequence

from kubetrail.investigate.report import DETAIL_COLUMNS, Report
from kubetrail.query.source import Source, Window

SECRET_READ_VERBS = ("get", "list", "watch")
EXEC_SUBRESOURCES = ("exec", "attach", "portforward")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
RBAC_GROUP = "rbac.authorization.k8s.io"
# Columns the summaries read besides DETAIL_COLUMNS.
SUMMARY_INPUTS = ("user_agent", "request_uri")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def grouped(
    source: Source,
    window: Window | None,
    *,
    title: str,
    text: str,
    group_by: Sequence[str],
    extra: Sequence[tuple[str, str]] = (),
    events: bool = True,
) -> Report:
    """Events matching `text`, and a summary per `group_by` values: requests, denied, first and last time.

    `extra` adds (name, SQL aggregate) columns to the summary; `events` includes each event's JSON.
    """
    wanted = [*DETAIL_COLUMNS, *(name for name in SUMMARY_INPUTS if name not in DETAIL_COLUMNS)]
    matched = source.select(text, window, columns=[*wanted, "event"] if events else wanted)
    keys = ", ".join(_ident(name) for name in group_by)
    more = "".join(f", {sql} AS {_ident(name)}" for name, sql in extra)
    summary = source.over(
        matched,
        f"SELECT {keys}, count(DISTINCT audit_id) AS requests, "
        "count(DISTINCT audit_id) FILTER (WHERE response_code >= 400) AS denied_or_failed"
        f"{more}, min(time) AS first, max(time) AS last "
        f"FROM matched GROUP BY ALL ORDER BY requests DESC, {keys}",
    )
    detail = matched.select([*DETAIL_COLUMNS, "event"] if events else list(DETAIL_COLUMNS))
    report = Report(title=title, filter=text, headline=[], summary=summary, events=detail)
    identities = len(set(summary.column(group_by[0]).to_pylist())) if summary.num_rows else 0
    report.headline.append(
        f"{report.requests:,} request(s) ({detail.num_rows:,} events) by {identities:,} {group_by[0]}(s)"
        + (f"; {sum(summary.column('denied_or_failed').to_pylist()):,} denied or failed" if summary.num_rows else "")
    )
    return report


def _in(values: Sequence[str]) -> str:
    return "(" + ",".join(values) + ")"


def secrets(source: Source, window: Window | None = None, *, events: bool = True) -> Report:
    """Who read or listed secrets (get, list, watch), by user and namespace."""
    return grouped(
        source,
        window,
        title="Secrets read or listed",
        text=f"resource=secrets verb in {_in(SECRET_READ_VERBS)}",
        group_by=("user", "namespace"),
        extra=(("verbs", "list(DISTINCT verb ORDER BY verb)"), ("names", "count(DISTINCT name)")),
        events=events,
    )


def forbidden(source: Source, window: Window | None = None, *, events: bool = True) -> Report:
    """Requests answered 403 Forbidden, by user, verb and resource."""
    return grouped(
        source,
        window,
        title="Forbidden (403) requests",
        text="code=403",
        group_by=("user", "verb", "resource"),
        extra=(("namespaces", "list(DISTINCT namespace ORDER BY namespace)"),),
        events=events,
    )


def exec_sessions(
    source: Source,
    window: Window | None = None,
    subresources: Sequence[str] = EXEC_SUBRESOURCES,
    *,
    events: bool = True,
) -> Report:
    """exec / attach / portforward into pods, by user and pod."""
    return grouped(
        source,
        window,
        title="Exec, attach and port-forward into pods",
        text=f"resource=pods subresource in {_in(subresources)}",
        group_by=("user", "namespace", "name"),
        extra=(("kinds", "list(DISTINCT subresource ORDER BY subresource)"),),
        events=events,
    )


def rbac_changes(source: Source, window: Window | None = None, *, events: bool = True) -> Report:
    """Changes to roles, role bindings, cluster roles and cluster role bindings."""
    return grouped(
        source,
        window,
        title="RBAC changes",
        text=f"apigroup={RBAC_GROUP} verb in {_in(WRITE_VERBS)}",
        group_by=("user", "verb", "resource"),
        extra=(
            (
                "objects",
                "list(DISTINCT coalesce(namespace || '/', '') || name ORDER BY coalesce(namespace || '/', '') || name) "
                "FILTER (WHERE name IS NOT NULL)",
            ),
        ),
        events=events,
    )


def anonymous(source: Source, window: Window | None = None, *, events: bool = True) -> Report:
    """Requests by unauthenticated users (system:anonymous), by source address and what they asked for."""
    return grouped(
        source,
        window,
        title="Anonymous requests",
        text="user=system:anonymous or group=system:unauthenticated",
        group_by=("source_ip", "user_agent"),
        extra=(
            ("allowed", "count(DISTINCT audit_id) FILTER (WHERE response_code < 400)"),
            ("paths", "list(DISTINCT request_uri ORDER BY request_uri)[1:10]"),
        ),
        events=events,
    )
