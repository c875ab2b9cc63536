"""What every investigation returns: a one-paragraph answer, a summary table, and the events behind it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

# The detail columns of every investigation (plus `event`, the JSON, for -o ndjson / json).
DETAIL_COLUMNS = (
    "time",
    "stage",
    "user",
    "verb",
    "resource",
    "subresource",
    "namespace",
    "name",
    "response_code",
    "source_ip",
    "cluster",
    "audit_id",
)


@dataclass
class Report:
    """An investigation's answer: `headline` lines first, `summary` rows grouped for people, `events` the detail."""

    title: str
    filter: str
    headline: list[str]
    summary: pa.Table
    events: pa.Table
    sections: dict[str, pa.Table] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        """Distinct requests (auditIDs) among the events."""
        if "audit_id" not in self.events.column_names:
            return int(self.events.num_rows)
        return len({str(value) for value in self.events.column("audit_id").to_pylist()})
