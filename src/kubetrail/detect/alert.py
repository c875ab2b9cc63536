"""The alert record detection produces: which rule matched which event, and what it printed."""

from __future__ import annotations

import msgspec

from kubetrail.detect.fields import Value
from kubetrail.detect.output import TimeFormat, falco_json, text_line
from kubetrail.detect.priority import Priority
from kubetrail.detect.timestamps import iso_time


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """One rule match on one event; renders as Falco's text line or Falco's JSON alert."""

    rule: str
    priority: Priority
    source: str
    time_ns: int
    message: str
    output_fields: dict[str, Value]
    tags: tuple[str, ...]
    audit_id: str
    cluster: str | None = None
    hostname: str = ""
    time_format: TimeFormat = TimeFormat.ISO8601
    mitre: tuple[str, ...] = ()
    threat_matrix: tuple[str, ...] = ()
    outcome: str | None = None  # succeeded, denied or failed (kubetrail.detect.facts), when the event has a code

    @property
    def output(self) -> str:
        """Falco's full output: time (UTC), priority and message."""
        return text_line(self.time_ns, self.priority.label, self.message, self.time_format)

    @property
    def time(self) -> str:
        """The event time, ISO 8601 with nanoseconds (`2018-10-25T14:09:12.581541000Z`)."""
        return iso_time(self.time_ns)

    def to_falco_json(self) -> bytes:
        """The alert as one line of Falco's JSON output (plus `auditID`, `cluster`, `outcome`, ATT&CK ids)."""
        return falco_json(
            output=self.output,
            output_fields=self.output_fields,
            time_ns=self.time_ns,
            time_iso=self.time,
            priority_label=self.priority.label,
            rule=self.rule,
            source=self.source,
            tags=self.tags,
            hostname=self.hostname,
            audit_id=self.audit_id,
            cluster=self.cluster,
            time_format=self.time_format,
            mitre=self.mitre,
            threat_matrix=self.threat_matrix,
            outcome=self.outcome,
        )
