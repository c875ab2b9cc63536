"""Alerts in Slack's incoming-webhook format: a `text` summary plus an attachment coloured by priority."""

from __future__ import annotations

from typing import Any

import msgspec

from kubetrail.alert.outputs.webhook import WebhookOutput
from kubetrail.detect.alert import Alert
from kubetrail.detect.output import render_value
from kubetrail.detect.priority import Priority

_COLOURS = {
    Priority.EMERGENCY: "#8b0000",
    Priority.ALERT: "#b22222",
    Priority.CRITICAL: "#d00000",
    Priority.ERROR: "#e8590c",
    Priority.WARNING: "#f2c744",
    Priority.NOTICE: "#3aa3e3",
    Priority.INFORMATIONAL: "#9e9e9e",
    Priority.DEBUG: "#cccccc",
}
MAX_FIELDS = 20


def slack_payload(alert: Alert) -> bytes:
    """The message body Slack's incoming webhooks take (`text` is also the notification's fallback)."""
    fields: list[dict[str, Any]] = [
        {"title": "rule", "value": alert.rule, "short": True},
        {"title": "priority", "value": alert.priority.label, "short": True},
    ]
    if alert.cluster:
        fields.append({"title": "cluster", "value": alert.cluster, "short": True})
    fields.append({"title": "time", "value": alert.time, "short": True})
    for key, value in list(alert.output_fields.items())[:MAX_FIELDS]:
        fields.append({"title": key, "value": render_value(value), "short": True})
    attachment = {
        "fallback": alert.output,
        "color": _COLOURS[alert.priority],
        "text": alert.message,
        "fields": fields,
        "footer": f"kubetrail · auditID {alert.audit_id}",
    }
    text = f"*{alert.priority.label}* {alert.rule}: {alert.message}"
    return msgspec.json.encode({"text": text, "attachments": [attachment]})


class SlackOutput(WebhookOutput):
    """A webhook whose body is Slack's message format instead of Falco's JSON."""

    def __init__(self, url: str, *, name: str = "slack", **options: Any) -> None:
        super().__init__(url, encode=slack_payload, name=name, **options)
