"""Alerts for output tests, built the way the engine builds them."""

from __future__ import annotations

from kubetrail.detect.alert import Alert
from kubetrail.detect.priority import Priority

# 2018-10-25T14:09:12.581541123Z
TIME_NS = 1540476552_581541123


def make_alert(
    rule: str = "Attach/Exec Pod",
    priority: Priority = Priority.NOTICE,
    *,
    audit_id: str = "a1b2c3",
    cluster: str | None = "prod",
    message: str = "Attach/Exec to pod (user=alice pod=web-1 ns=default action=exec command=sh)",
    user: str = "alice",
) -> Alert:
    return Alert(
        rule=rule,
        priority=priority,
        source="k8s_audit",
        time_ns=TIME_NS,
        message=message,
        output_fields={"ka.user.name": user, "ka.target.namespace": "default", "ka.uri.param[command]": None},
        tags=("k8s", "mitre_execution"),
        audit_id=audit_id,
        cluster=cluster,
        hostname="node-1",
    )
