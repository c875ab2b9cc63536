"""`kubetrail rbac generate|unused`: RBAC from observed activity, and the permissions never used.

Events come from audit logs (`--file`, any format `ingest` reads) or a store (`--store`), limited to a
window (`--since`, `--until`: a duration back from now such as `7d`, or an RFC 3339 time).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from kubetrail.cli.inputs import InputFiles, input_options
from kubetrail.model import Event, decode_event, normalize_microtime
from kubetrail.rbac import (
    CLUSTER,
    GenerateOptions,
    RbacError,
    RbacSet,
    Subject,
    aggregate,
    find_unused,
    generate,
    identities_of,
    observe,
    parse_manifests,
    render,
    service_account_user,
)
from kubetrail.store import Store

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_YAML_SUFFIXES = (".yaml", ".yml", ".json")


def parse_when(text: str | None, now: datetime, option: str) -> str | None:
    """A window bound as an RFC 3339 UTC string comparable with audit timestamps (None when not given)."""
    if text is None:
        return None
    match = _DURATION.match(text.strip())
    if match:
        moment = now - timedelta(seconds=int(match[1]) * _SECONDS[match[2]])
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a duration (7d, 12h) nor an RFC 3339 time", param_hint=option
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _when(event: Event) -> str:
    stamp = event.requestReceivedTimestamp or event.stageTimestamp
    try:
        return normalize_microtime(stamp) if stamp else ""
    except ValueError:
        return stamp


def _in_window(event: Event, since: str | None, until: str | None) -> bool:
    if since is None and until is None:
        return True
    when = _when(event)
    return bool(when) and (since is None or when >= since) and (until is None or when < until)


def _from_files(inputs: InputFiles) -> Iterator[Event]:
    for event, _, _ in inputs.events():
        yield event


def _from_store(store_dir: str, usernames: frozenset[str] | None) -> Iterator[Event]:
    with Store.open(store_dir, read_only=True) as store:
        connection = store.query_connection()
        try:
            if usernames is None:
                cursor = connection.execute("SELECT event FROM events ORDER BY time")
            else:
                names = sorted(usernames)
                marks = ", ".join("?" for _ in names)
                cursor = connection.execute(
                    f"SELECT event FROM events WHERE user IN ({marks}) OR impersonated_user IN ({marks}) ORDER BY time",
                    [*names, *names],
                )
            while rows := cursor.fetchmany(4096):
                for (text,) in rows:
                    yield decode_event(text.encode(), source=store_dir)
        finally:
            connection.close()


def load_events(
    files: tuple[str, ...],
    store_dir: str | None,
    since: str | None,
    until: str | None,
    usernames: frozenset[str] | None,
    *,
    input_format: str = "auto",
    strict: bool = False,
) -> list[Event]:
    """The events of the window from logs or a store (only those of `usernames` when given)."""
    if bool(files) == bool(store_dir):
        raise RbacError("give either --store DIR or --file LOG", hint="e.g. --file /var/log/kubernetes/audit.log")
    if store_dir:
        source = _from_store(store_dir, usernames)
        return [event for event in source if _involves(event, usernames) and _in_window(event, since, until)]
    inputs = InputFiles(files, input_format=input_format)
    found = [event for event in _from_files(inputs) if _involves(event, usernames) and _in_window(event, since, until)]
    inputs.report()
    inputs.exit_if_strict(strict)
    return found


def _involves(event: Event, usernames: frozenset[str] | None) -> bool:
    if usernames is None or event.user.username in usernames:
        return True
    return event.impersonatedUser is not None and event.impersonatedUser.username in usernames


def _subject(user: str | None, serviceaccount: str | None) -> Subject:
    if bool(user) == bool(serviceaccount):
        raise RbacError("give exactly one of --user or --serviceaccount", hint="e.g. --serviceaccount ns1/sa1")
    if serviceaccount:
        namespace, _, name = serviceaccount.replace(":", "/").partition("/")
        if not namespace or not name or "/" in name:
            raise RbacError(
                f"--serviceaccount {serviceaccount!r} is not NAMESPACE/NAME", hint="e.g. kube-system/coredns"
            )
        return Subject("ServiceAccount", name, namespace)
    return Subject.from_username(str(user))


_WINDOW_OPTIONS = [
    click.argument("logs", nargs=-1, metavar="[LOG…]"),
    click.option(
        "--store", "store_dir", type=click.Path(file_okay=False, exists=True), help="Read events from a store."
    ),
    click.option(
        "--file",
        "files",
        multiple=True,
        metavar="LOG",
        help="Read events from an audit log (repeatable; or give LOGs as arguments).",
    ),
    click.option("--since", default=None, help="Window start: a duration back from now (7d, 12h) or an RFC 3339 time."),
    click.option("--until", default=None, help="Window end (same forms as --since)."),
]


def _window_options(command: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(_WINDOW_OPTIONS):
        command = option(command)
    return input_options(command)


@click.group(name="rbac")
def rbac_group() -> None:
    """RBAC from activity: roles granting exactly what was used, and granted permissions never used.

    \b
    Examples:
      kubetrail rbac generate --serviceaccount shop/cart --file audit.log > cart-rbac.yaml
      kubetrail rbac unused --rbac manifests/ --store /var/lib/kubetrail --since 30d
    """


@rbac_group.command(name="generate")
@click.option("--user", default=None, help="The username (as in the audit events' user.username).")
@click.option("--serviceaccount", default=None, metavar="NS/NAME", help="A service account.")
@click.option("--namespace", "-n", default=None, help="Only this namespace's requests (a Role, no ClusterRole).")
@click.option("--resource-names", is_flag=True, help="Grant only the named objects that were used (resourceNames).")
@click.option("--include-denied", is_flag=True, help="Also grant requests that were denied (403) in the window.")
@_window_options
@click.option("-o", "--output", default="-", show_default=True, help="Output file (`-` = stdout).")
def generate_command(
    user: str | None,
    serviceaccount: str | None,
    namespace: str | None,
    resource_names: bool,
    include_denied: bool,
    logs: tuple[str, ...],
    store_dir: str | None,
    files: tuple[str, ...],
    since: str | None,
    until: str | None,
    input_format: str,
    strict: bool,
    output: str,
) -> None:
    """Write Roles, ClusterRoles and bindings that grant exactly the requests the subject made.

    Verbs are granted per resource and subresource as used (no expansion: `list` does not bring `watch`);
    each namespace gets a Role and RoleBinding; cluster-scoped resources, all-namespace requests and
    non-resource URLs go to a ClusterRole and ClusterRoleBinding. Objects are named `kubetrail:<user>`.
    The subject of a request is the impersonated user when there is one; a user who impersonates others
    is granted `impersonate` on them.

    \b
    Examples:
      kubetrail rbac generate --user alice --file audit.log --include-denied
      kubetrail rbac generate --serviceaccount ns1/sa1 --store ./store --since 7d -o sa1-rbac.yaml
    """
    subject = _subject(user, serviceaccount)
    now = datetime.now(UTC)
    start, end = parse_when(since, now, "--since"), parse_when(until, now, "--until")
    usernames = frozenset({subject.username})
    events = load_events(files + logs, store_dir, start, end, usernames, input_format=input_format, strict=strict)
    options = GenerateOptions(resource_names=resource_names, include_denied=include_denied, namespace=namespace)
    generated = generate(subject, observe(events, usernames).values(), options)
    window = f"{start or 'the beginning'} to {end or 'the end'}"
    kept = sum(item.count if include_denied else item.allowed for item in generated.requests)
    header = [
        f"RBAC for {subject}, generated by `kubetrail rbac generate` from {kept} request(s) ({window}).",
        "Grants exactly the verbs used per resource" + (", denied requests included." if include_denied else "."),
    ]
    text = render(generated, header)
    if output == "-":
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text, encoding="utf-8")
        scopes = ", ".join("cluster" if scope == CLUSTER else scope for scope in generated.scopes) or "nothing"
        click.echo(f"wrote {output}: {subject} ({scopes})", err=True)


def _manifest_files(paths: tuple[str, ...]) -> list[Path]:
    found: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found.extend(sorted(item for item in path.rglob("*") if item.suffix in _YAML_SUFFIXES and item.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise RbacError("no such file or directory", source=text, hint="check --rbac")
    return found


def load_rbac(paths: tuple[str, ...]) -> RbacSet:
    """Every Role, ClusterRole and binding in the files (directories are searched for *.yaml, *.yml, *.json)."""
    rbac = RbacSet()
    for path in _manifest_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise RbacError(f"cannot read: {error}", source=str(path)) from error
        parse_manifests(text, str(path), rbac)
    aggregate(rbac)
    return rbac


@rbac_group.command(name="unused")
@click.option("--rbac", "rbac_paths", multiple=True, required=True, metavar="DIR|FILE", help="RBAC manifests.")
@click.option("--subject", "subjects", multiple=True, help="Only this user, group:NAME or NS/NAME service account.")
@_window_options
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def unused_command(
    rbac_paths: tuple[str, ...],
    subjects: tuple[str, ...],
    logs: tuple[str, ...],
    store_dir: str | None,
    files: tuple[str, ...],
    since: str | None,
    until: str | None,
    input_format: str,
    strict: bool,
    output: str,
) -> None:
    """Report, per subject, permissions the RBAC manifests grant that no request used in the window.

    Bindings grant their role's rules in their namespace (RoleBinding) or everywhere (ClusterRoleBinding);
    groups (system:authenticated, system:serviceaccounts:NS, …) apply to every user seen with them. A
    wildcard grant counts as used when any request it allows was made; only allowed requests count.
    Aggregated ClusterRoles get the rules of the ClusterRoles their selectors match.

    \b
    Example:
      kubetrail rbac unused --rbac ./rbac/ --file audit.log -o json
    """
    rbac = load_rbac(rbac_paths)
    now = datetime.now(UTC)
    window = parse_when(since, now, "--since"), parse_when(until, now, "--until")
    events = load_events(files + logs, store_dir, *window, None, input_format=input_format, strict=strict)
    report = find_unused(rbac, observe(events).values(), identities_of(events))
    wanted = {_subject_label(text) for text in subjects}
    unused = [item for item in report.unused if not wanted or item.subject in wanted]
    if output == "json":
        for item in unused:
            click.echo(
                json.dumps(
                    {
                        "subject": item.subject,
                        "namespace": item.namespace,
                        "verb": item.verb,
                        "apiGroup": item.api_group,
                        "resource": item.resource,
                        "resourceNames": list(item.resource_names),
                        "nonResourceURL": item.url,
                        "grantedBy": item.via,
                    },
                    ensure_ascii=False,
                )
            )
        return
    for note in report.notes:
        click.echo(f"note: {note}")
    current = None
    for item in unused:
        if item.subject != current:
            current = item.subject
            granted = report.granted.get(current, 0)
            count = sum(1 for other in unused if other.subject == current)
            click.echo(f"{current}: {count} of {granted} granted permission(s) unused")
        click.echo(f"  {item.verb:<16} {item.what:<40} {item.namespace:<20} {item.via}")
    if not unused:
        click.echo("every granted permission was used in the window")


def _subject_label(text: str) -> str:
    if text.startswith("group:"):
        return str(Subject("Group", text[len("group:") :]))
    if "/" in text:
        namespace, _, name = text.partition("/")
        return str(Subject("ServiceAccount", name, namespace))
    return str(Subject.from_username(text))


__all__ = [
    "generate_command",
    "load_events",
    "load_rbac",
    "parse_when",
    "rbac_group",
    "service_account_user",
    "unused_command",
]
