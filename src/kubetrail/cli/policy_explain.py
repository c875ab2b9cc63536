"""`kubetrail policy explain FILE`: the level a policy gives a request, which rule decides and why."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

import click
import msgspec

from kubetrail.cli.inputs import InputFiles, input_options
from kubetrail.intake import repairing
from kubetrail.model import Event
from kubetrail.policy import LoadedPolicy, PolicyError, load_policy
from kubetrail.policy.attributes import RequestAttributes, attributes_from_event
from kubetrail.policy.evaluate import AuditDecision, compile_policy
from kubetrail.policy.explain import Explanation, RuleExplanation, explain

_BATCH = 4096
_encode = msgspec.json.encode
# Fields kube-apiserver always writes but a policy decision never reads; filled in when absent.
_UNUSED_DEFAULTS: dict[str, Any] = {
    "level": "Metadata",
    "auditID": "",
    "stage": "ResponseComplete",
    "requestURI": "",
    "verb": "",
    "user": {},
}


def decision_fields(decision: AuditDecision) -> dict[str, object]:
    """The decision as the JSON output's keys (without auditID)."""
    return {
        "level": decision.level.value,
        "omitStages": [stage.value for stage in decision.omit_stages],
        "omitManagedFields": decision.omit_managed_fields,
        "rule": decision.rule_index,
    }


def _decision_tail(decision: AuditDecision) -> bytes:
    """`,"level":…,"rule":…}` — everything after the auditID, encoded once per rule."""
    return b"," + _encode(decision_fields(decision))[1:]


def attributes_from_flags(
    *,
    user: str,
    groups: tuple[str, ...],
    verb: str,
    namespace: str,
    resource: str,
    name: str,
    api_group: str,
    path: str,
) -> RequestAttributes:
    """Request attributes from the command's flags: `--path` alone means a non-resource request."""
    is_resource = bool(resource or name or namespace or api_group)
    if not is_resource and not path:
        raise click.UsageError(
            "say what the request targets: --resource (e.g. pods, pods/exec) for a resource request, "
            "--path (e.g. /healthz) for a non-resource request, or give --event / --events"
        )
    base, _, subresource = resource.partition("/")
    return RequestAttributes(
        user=user,
        groups=groups,
        verb=verb,
        is_resource_request=is_resource,
        namespace=namespace,
        api_group=api_group,
        resource=base,
        subresource=subresource,
        name=name,
        path=path,
    )


def describe_request(attrs: RequestAttributes) -> str:
    """A one-line summary, e.g. `get pods/exec "web-1" in namespace "prod" by jane (groups: dev)`."""
    verb = attrs.verb or "(no verb)"
    if attrs.is_resource_request:
        target = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource or "(no resource)"
        if attrs.api_group:
            target += f" (group {attrs.api_group})"
        if attrs.name:
            target += f' "{attrs.name}"'
        target += f' in namespace "{attrs.namespace}"' if attrs.namespace else " (cluster-scoped)"
    else:
        target = f'non-resource path "{attrs.path}"'
    who = attrs.user or "(no user)"
    if attrs.groups:
        who += f" (groups: {' '.join(attrs.groups)})"
    return f"{verb} {target} by {who}"


def _rule_title(rule: RuleExplanation, source: str) -> str:
    where = f"{source}:{rule.line}" if rule.line is not None else source
    return f"rule {rule.index} ({where}, level {rule.level.value})"


def render_explanation(explanation: Explanation, source: str, *, verbose: bool) -> list[str]:
    """The human report: request, level, omitted stages, managed fields, the deciding rule and why."""
    decision = explanation.decision
    stages = ", ".join(stage.value for stage in decision.omit_stages) or "(none)"
    matched = explanation.matched_rule
    level = decision.level.value if matched is not None else "None (no rule matched: nothing is recorded)"
    lines = [
        f"request:           {describe_request(explanation.attributes)}",
        f"level:             {level}",
        f"omitted stages:    {stages}",
        f"omitManagedFields: {'true' if decision.omit_managed_fields else 'false'}",
    ]
    if matched is not None:
        lines.append(f"decided by:        {_rule_title(matched, source)}")
        lines.append("why it matched:")
        lines.extend(f"  ✓ {reason}" for reason in matched.reasons)
    earlier = explanation.earlier_rules
    if verbose and earlier:
        lines.append("why earlier rules did not match:" if matched is not None else "why no rule matched:")
        for rule in earlier:
            lines.append(f"  {_rule_title(rule, source)}")
            lines.extend(f"    ✗ {reason}" for reason in rule.reasons)
    elif earlier:
        lines.append(f"({len(earlier)} earlier rule(s) did not match; -v shows why)")
    return lines


def _completed(document: Any) -> Any:
    if isinstance(document, dict) and document.get("kind", "Event") == "Event":
        for key, value in _UNUSED_DEFAULTS.items():
            if document.get(key) is None:
                document[key] = value
    elif isinstance(document, dict) and isinstance(document.get("items"), list):
        document["items"] = [_completed(item) for item in document["items"]]
    return document


def _complete(raw: bytes) -> bytes | None:
    """An event missing (or null in) fields the apiserver always writes but a decision never reads, filled in."""
    try:
        document = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    return _encode(_completed(document)) if isinstance(document, dict) else None


class _Reader:
    """The events of an audit log, read as every command reads them, but deciding events that lack fields a
    decision does not use (level, stage, auditID, requestURI, verb, user), as the apiserver's lenient decoder
    would read them. Refused records are reported at the end."""

    def __init__(self, path: str, input_format: str) -> None:
        self.inputs = InputFiles([path], input_format=input_format)

    def events(self) -> Iterator[Event]:
        with repairing(_complete):
            for event, _, _ in self.inputs.events():
                yield event

    def batches(self) -> Iterator[list[Event]]:
        events = self.events()
        while batch := list(itertools.islice(events, _BATCH)):
            yield batch

    def finish(self, strict: bool) -> None:
        self.inputs.report()
        self.inputs.exit_if_strict(strict)


def _read_one_event(path: str, input_format: str) -> Event:
    reader = _Reader(path, input_format)
    events = list(itertools.islice(reader.events(), 2))
    reader.finish(strict=False)
    if len(events) != 1:
        found = "no event" if not events else "more than one event"
        raise click.UsageError(f"{path}: --event takes a file with exactly one event, found {found}; use --events")
    return events[0]


def _write_json_lines(loaded: LoadedPolicy, reader: _Reader, out: BinaryIO) -> None:
    """One JSON object per event, in input order, evaluated a batch at a time."""
    compiled = compile_policy(loaded.policy)
    tails: dict[int | None, bytes] = {}
    for batch in reader.batches():
        chunk = bytearray()
        for event, decision in zip(batch, compiled.evaluate_events(batch), strict=True):
            tail = tails.get(decision.rule_index)
            if tail is None:
                tail = tails[decision.rule_index] = _decision_tail(decision)
            chunk += b'{"auditID":' + _encode(event.auditID) + tail + b"\n"
        out.write(chunk)
    out.flush()


def _write_text_lines(loaded: LoadedPolicy, reader: _Reader) -> None:
    compiled = compile_policy(loaded.policy)
    for batch in reader.batches():
        for event, decision in zip(batch, compiled.evaluate_events(batch), strict=True):
            rule = f"rule {decision.rule_index}" if decision.rule_index is not None else "no rule"
            request = describe_request(attributes_from_event(event))
            click.echo(f"{event.auditID}  {decision.level.value:<15} {rule:<8} {request}")


def _load(policy_file: str) -> LoadedPolicy:
    try:
        loaded = load_policy(policy_file)
    except PolicyError as error:
        for issue in error.issues:
            hint = f" (hint: {issue.hint})" if issue.hint else ""
            click.echo(f"{issue}{hint}", err=True)
        sys.exit(1)
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    return loaded


@click.command(name="explain")
@click.argument("policy_file", type=click.Path())
@click.option("--user", default="", help="The authenticated user's name.")
@click.option("--group", "groups", multiple=True, help="One of the user's groups (repeatable).")
@click.option("--verb", default="", help="The request verb: get, list, watch, create, update, patch, delete, ...")
@click.option("-n", "--namespace", default="", help='The namespace ("" or absent: cluster-scoped).')
@click.option("--resource", default="", help="The resource, with an optional subresource: pods, pods/exec.")
@click.option("--name", default="", help="The object's name (matters for rules with resourceNames).")
@click.option("--api-group", default="", help='The API group ("" is the core group), e.g. apps.')
@click.option("--path", default="", help="A non-resource URL path such as /healthz (when no --resource is given).")
@click.option("--event", "event_file", metavar="FILE", help="Explain the request of one event.")
@click.option(
    "--events",
    "events_file",
    metavar="FILE",
    help="Decide every event of an audit log (any input `detect` reads: NDJSON, EventList, gzip, exports).",
)
@input_options
@click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format."
)
@click.option("-v", "--verbose", is_flag=True, help="Also show why each earlier rule did not match.")
def explain_command(
    policy_file: str,
    user: str,
    groups: tuple[str, ...],
    verb: str,
    namespace: str,
    resource: str,
    name: str,
    api_group: str,
    path: str,
    event_file: str | None,
    events_file: str | None,
    input_format: str,
    strict: bool,
    output: str,
    verbose: bool,
) -> None:
    """Explain the level POLICY_FILE gives a request: omitted stages, managed fields, the rule and why.

    Describe the request with flags, point at one event with --event, or decide a whole audit
    log with --events. Rules are tried in order and the first match wins, as in kube-apiserver.
    An event without objectRef is a non-resource request whose path is its requestURI's path.

    \b
    JSON (-o json): one object per request, in input order:
      {"auditID": ..., "level": ..., "omitStages": [...], "omitManagedFields": false, "rule": 3}
    "rule" is the index of the deciding rule, or null when no rule matched (level None).

    \b
    Examples:
      kubetrail policy explain audit-policy.yaml --user jane --group dev --verb create --resource pods/exec -n prod
      kubetrail policy explain audit-policy.yaml --user system:anonymous --verb get --path /healthz -v
      kubetrail policy explain audit-policy.yaml --event event.json -o json
      kubetrail policy explain audit-policy.yaml --events audit.log -o json
    """
    request_flags = bool(user or groups or verb or namespace or resource or name or api_group or path)
    if sum((request_flags, event_file is not None, events_file is not None)) > 1:
        raise click.UsageError("give request flags, --event or --events, not several of them")
    loaded = _load(policy_file)
    if events_file is not None:
        reader = _Reader(events_file, input_format)
        if output == "json":
            _write_json_lines(loaded, reader, sys.stdout.buffer)
        else:
            _write_text_lines(loaded, reader)
        reader.finish(strict)
        return
    if event_file is not None:
        event = _read_one_event(event_file, input_format)
        attrs, audit_id = attributes_from_event(event), event.auditID
    else:
        attrs = attributes_from_flags(
            user=user,
            groups=groups,
            verb=verb,
            namespace=namespace,
            resource=resource,
            name=name,
            api_group=api_group,
            path=path,
        )
        audit_id = None
    explanation = explain(loaded, attrs)
    if output == "json":
        click.echo(_encode({"auditID": audit_id, **decision_fields(explanation.decision)}).decode())
        return
    for line in render_explanation(explanation, loaded.source, verbose=verbose):
        click.echo(line)
