"""Alerts for Sigma matches, in the shape Falco consumers read (`ka.*` output fields, text line, JSON)."""

from __future__ import annotations

from kubetrail.detect.alert import Alert
from kubetrail.detect.context import EventContext
from kubetrail.detect.engine import event_time_ns
from kubetrail.detect.fields import Value
from kubetrail.detect.output import TimeFormat
from kubetrail.detect.priority import Priority

SOURCE = "k8s_audit"
_HAS_MITRE = "mitre" in getattr(Alert, "__struct_fields__", ())


def event_fields(ctx: EventContext) -> dict[str, Value]:
    """Who did what to which object: the output fields every Sigma alert carries, named as Falco names them."""
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
    """`user=jane verb=create resource=pods ...` with `<NA>` for missing values, as Falco prints them."""
    names = ("user", "verb", "resource", "subresource", "ns", "name", "uri")
    keys = (
        "ka.user.name",
        "ka.verb",
        "ka.target.resource",
        "ka.target.subresource",
        "ka.target.namespace",
        "ka.target.name",
        "ka.uri",
    )
    parts = []
    for label, key in zip(names, keys, strict=True):
        value = fields.get(key)
        if label == "subresource" and value is None:
            continue
        parts.append(f"{label}={value if isinstance(value, str) else '<NA>'}")
    return " ".join(parts)


def make_alert(
    *,
    rule: str,
    priority: Priority,
    ctx: EventContext,
    message: str,
    output_fields: dict[str, Value],
    tags: tuple[str, ...],
    mitre: tuple[str, ...],
    hostname: str = "",
    time_format: TimeFormat = TimeFormat.ISO8601,
    time_ns: int | None = None,
) -> Alert:
    """One alert for the event in `ctx`; MITRE IDs go into the alert's `mitre` when it has one, else its tags."""
    extra: dict[str, object] = {}
    if _HAS_MITRE:
        extra["mitre"] = mitre
    else:
        tags = tags + tuple(technique for technique in mitre if technique not in tags)
    return Alert(
        rule=rule,
        priority=priority,
        source=SOURCE,
        time_ns=event_time_ns(ctx.event) if time_ns is None else time_ns,
        message=message,
        output_fields=output_fields,
        tags=tags,
        audit_id=ctx.event.auditID,
        cluster=ctx.cluster or None,
        hostname=hostname,
        time_format=time_format,
        **extra,  # type: ignore[arg-type]
    )
