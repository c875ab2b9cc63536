"""GKE Cloud Logging entries for GCP audit rule tests, turned into events by kubetrail's real intake."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import msgspec

from kubetrail.detect import Engine, RuleSource, load_ruleset
from kubetrail.detect.context import EventContext
from kubetrail.intake import read_bytes
from kubetrail.intake.gke import object_ref
from tests.detect.helpers import event_dict
from tests.intake.shapes import log_entry

RULES = Path(__file__).parent / "gcp_rules"
"""Rules written for these tests after SigmaHQ's GKE rules (each file names the rule it mirrors)."""


def gke_entry(
    method: str,
    resource: str,
    *,
    audit_id: str = "6a9d2b51-0000-4000-8000-000000000001",
    user: str = "alice@example.com",
    ip: str = "203.0.113.7",
    code: int = 200,
    request: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The LogEntry GKE writes for one request, its `methodName` and `resourceName` written out by the caller.

    tests/intake/shapes.log_entry builds the rest of the entry (the status as a google.rpc code, labels, resource)
    from an apiserver event; its own methodName keeps the API group unreversed, so it is replaced.
    """
    parsed, _ = object_ref(resource)
    assert parsed is not None
    ref = {key: value for key, value in msgspec.structs.asdict(parsed).items() if value}
    event = event_dict(
        auditID=audit_id,
        verb=method.rsplit(".", 1)[1],
        objectRef=ref,
        user={"username": user},
        sourceIPs=[ip],
        responseStatus={"metadata": {}, "code": code},
        annotations={"authorization.k8s.io/decision": "forbid" if code == 403 else "allow"},
    )
    if request is not None:
        event["requestObject"] = request
    entry = log_entry(event)
    payload = entry["protoPayload"]
    assert payload["resourceName"] == resource
    payload["methodName"] = method
    for item in payload["authorizationInfo"]:
        item["permission"] = method
    return entry


def contexts(*entries: dict[str, Any]) -> list[EventContext]:
    """The events kubetrail's intake makes of some entries (two for a granted exec), ready to evaluate."""
    data = json.dumps([copy.deepcopy(entry) for entry in entries]).encode()
    found: list[EventContext] = []
    for batch in read_bytes(data, source="gke.json", format="gke"):
        assert batch.rejected == []
        found.extend(
            EventContext(event, batch.cluster or "", raw) for event, raw in zip(batch.events, batch.raws, strict=True)
        )
    return found


def rules_engine(*texts: str, directory: Path | None = RULES) -> Engine:
    """An engine over this directory's rule files and any rule texts."""
    sources = [RuleSource(path.name, path.read_text()) for path in sorted(directory.glob("*.yml"))] if directory else []
    sources += [RuleSource(f"rule-{index}.yml", text) for index, text in enumerate(texts)]
    return Engine(load_ruleset(sources))


def fired(engine: Engine, entry: dict[str, Any]) -> list[str]:
    """The rules that alert on one entry's events, in order."""
    return [alert.rule for ctx in contexts(entry) for alert in engine.detect(ctx)]


def value_at(document: Any, path: str) -> Any:
    """The value at a dotted path of a LogEntry (the first item of a list); keys may hold dots (`labels`)."""
    node = document
    parts = path.split(".")
    while parts:
        if isinstance(node, list):
            node = node[0]
        for cut in range(len(parts), 0, -1):
            key = ".".join(parts[:cut])
            if isinstance(node, dict) and key in node:
                node = node[key]
                parts = parts[cut:]
                break
        else:
            raise KeyError(path)
    return node
