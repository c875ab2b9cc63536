"""What a Sigma alert says: the rule's title and who did what to which object, with Falco's `ka.*` field names.

Sigma rules have no output template; every alert prints the same evidence so Falco consumers read
Sigma alerts like any other (`output_fields` keyed `ka.user.name`, `ka.verb` …, plus `sigma.id`
and the rule's own `fields:`).
"""

from __future__ import annotations

from kubetrail.detect.context import EventContext
from kubetrail.detect.fields import Value
from kubetrail.detect.output import MISSING_TEXT, OutputFormat, render_value
from kubetrail.detect.sigma.rule import SigmaMatch

_SHOWN = (
    ("user", "ka.user.name"),
    ("verb", "ka.verb"),
    ("resource", "ka.target.resource"),
    ("subresource", "ka.target.subresource"),
    ("ns", "ka.target.namespace"),
    ("name", "ka.target.name"),
    ("uri", "ka.uri"),
)


def event_fields(ctx: EventContext) -> dict[str, Value]:
    """Who did what to which object, named as Falco's k8saudit fields name it."""
    event = ctx.event
    ref = event.objectRef
    status = event.responseStatus
    return {
        "ka.user.name": event.user.username or None,
        "ka.verb": event.verb or None,
        "ka.target.resource": (ref.resource or None) if ref else None,
        "ka.target.subresource": (ref.subresource or None) if ref else None,
        "ka.target.namespace": (ref.namespace or None) if ref else None,
        "ka.target.name": (ref.name or None) if ref else None,
        "ka.uri": event.requestURI or None,
        "ka.response.code": str(status.code) if status is not None and status.code else None,
        "ka.sourceips": list(event.sourceIPs) or None,
        "ka.useragent": event.userAgent or None,
    }


def describe(fields: dict[str, Value]) -> str:
    """`user=jane verb=create resource=pods ns=default name=web uri=...`; no subresource unless there is one."""
    parts = []
    for label, key in _SHOWN:
        value = fields.get(key)
        if label == "subresource" and value is None:
            continue
        parts.append(f"{label}={render_value(value) if value is not None else MISSING_TEXT}")
    return " ".join(parts)


def sigma_output(rule: SigmaMatch) -> OutputFormat:
    """The output of a Sigma rule as an engine output format: `<title> (user=... verb=... ...)`."""
    title = rule.title
    sigma_id = rule.id or None

    def render(ctx: EventContext) -> tuple[str, dict[str, Value]]:
        fields = event_fields(ctx)
        fields["sigma.id"] = sigma_id
        if rule.fields:
            fields.update(rule.field_values(ctx))
        return f"{title} ({describe(fields)})", fields

    return OutputFormat(f"{title} (sigma)", (), render)
