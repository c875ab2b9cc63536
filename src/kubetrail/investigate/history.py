"""`object KIND/NAMESPACE/NAME`: who created, changed and deleted one object, with diffs when bodies were recorded."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from kubetrail.investigate.diff import Change, diff
from kubetrail.investigate.report import DETAIL_COLUMNS, Report
from kubetrail.query.errors import QueryError
from kubetrail.query.source import Source, Window

READ_VERBS = ("get", "list", "watch")


@dataclass(frozen=True)
class ObjectRef:
    resource: str
    namespace: str | None
    name: str

    @classmethod
    def parse(cls, text: str) -> ObjectRef:
        """`pods/prod/web-1`, `deployments/prod/web`, `clusterroles/admin` (cluster-scoped: no namespace)."""
        parts = text.strip("/").split("/")
        if len(parts) == 3 and all(parts):
            return cls(parts[0].lower(), parts[1], parts[2])
        if len(parts) == 2 and all(parts):
            return cls(parts[0].lower(), None, parts[1])
        raise QueryError(
            f"{text!r} is not KIND/NAMESPACE/NAME", hint="e.g. deployments/prod/web or clusterrolebindings/admin"
        )

    def filter(self, resource: str) -> str:
        namespace = f'ns="{self.namespace}"' if self.namespace else 'ns=""'
        return f'resource="{resource}" {namespace} name="{self.name}"'


@dataclass
class Revision:
    """One write to the object: who, when, what verb, the outcome, and what changed (when bodies were recorded)."""

    time: datetime
    user: str
    verb: str
    code: int | None
    audit_id: str
    level: str
    changes: list[Change] = field(default_factory=list)
    patch: Any = None


@dataclass
class History:
    report: Report
    revisions: list[Revision]


def _body(document: dict[str, Any], key: str) -> Any:
    value = document.get(key)
    return value if isinstance(value, dict) else None


def revisions_of(events: pa.Table) -> list[Revision]:
    """Writes in order (one per request, its final stage), each diffed against the last known state."""
    final: dict[str, dict[str, Any]] = {}
    for row in events.to_pylist():
        final[row["audit_id"]] = row  # rows come oldest first; the last stage wins
    state: Any = None
    revisions: list[Revision] = []
    for row in sorted(final.values(), key=lambda item: (item["time"], item["audit_id"])):
        if row["verb"] in READ_VERBS:
            continue
        document = json.loads(row["event"])
        code = row["response_code"]
        revision = Revision(row["time"], row["user"] or "", row["verb"] or "", code, row["audit_id"], document["level"])
        succeeded = code is None or code < 400
        request, response = _body(document, "requestObject"), _body(document, "responseObject")
        after = response if response is not None and response.get("kind") != "Status" else None
        if row["verb"] == "patch":
            revision.patch = document.get("requestObject")
        elif after is None and row["verb"] in ("create", "update"):
            after = request
        if row["verb"] == "delete" and succeeded:
            if state is not None:
                revision.changes = [Change("/", "(object)", None)]
            state = None
        elif after is not None and succeeded:
            revision.changes = diff(state or {}, after)
            state = after
        revisions.append(revision)
    return revisions


def object_history(source: Source, reference: str, window: Window | None = None, *, reads: bool = False) -> History:
    """The object's writes (and reads with `reads`) in order, with diffs of the recorded bodies."""
    ref = ObjectRef.parse(reference)
    candidates = [ref.resource] if ref.resource.endswith("s") else [ref.resource, ref.resource + "s"]
    events = source.select(ref.filter(candidates[0]), window, columns=[*DETAIL_COLUMNS, "level", "event"])
    text = ref.filter(candidates[0])
    if events.num_rows == 0 and len(candidates) > 1:
        text = ref.filter(candidates[1])
        events = source.select(text, window, columns=[*DETAIL_COLUMNS, "level", "event"])
    revisions = revisions_of(events)
    shown = revisions if reads else [item for item in revisions if item.verb not in READ_VERBS]
    summary = pa.Table.from_pylist(
        [
            {
                "time": item.time,
                "user": item.user,
                "verb": item.verb,
                "code": item.code,
                "level": item.level,
                "changes": [
                    f"{change.path}: {_short(change.before)} → {_short(change.after)}" for change in item.changes
                ]
                + ([f"patch {_short(item.patch, 200)}"] if item.patch is not None else []),
            }
            for item in shown
        ]
    )
    if not reads:
        events = events.filter(pc.invert(pc.is_in(events.column("verb"), pa.array(READ_VERBS))))
    creators = sorted({item.user for item in revisions if item.verb == "create" and (item.code or 0) < 400})
    deleted = [item for item in revisions if item.verb == "delete" and (item.code or 0) < 400]
    headline = [f"{reference}: {len(revisions)} write(s) by {len({item.user for item in revisions})} user(s)"]
    if creators:
        headline.append(f"created by {', '.join(creators)}")
    if deleted:
        headline.append(f"deleted by {deleted[-1].user} at {deleted[-1].time:%Y-%m-%dT%H:%M:%SZ}")
    if revisions and not any(item.changes or item.patch is not None for item in revisions):
        headline.append("no bodies recorded (the audit policy logs this object at Metadata level): no diffs")
    report = Report(title=f"History of {reference}", filter=text, headline=headline, summary=summary, events=events)
    return History(report, revisions)


def _short(value: Any, size: int = 80) -> str:
    text = "∅" if value is None else json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= size else text[: size - 1] + "…"
