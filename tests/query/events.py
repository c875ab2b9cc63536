"""Small, hand-written audit events for query tests, shaped as kube-apiserver writes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubetrail.model import decode_event
from kubetrail.query.source import Source, open_files, open_store
from kubetrail.store import Store


def event(
    audit_id: str,
    *,
    time: str = "2026-03-19T10:00:00.000000Z",
    stage: str = "ResponseComplete",
    level: str = "Metadata",
    verb: str = "get",
    user: str = "jane@example.com",
    groups: tuple[str, ...] = ("system:authenticated",),
    ips: tuple[str, ...] = ("10.0.0.7",),
    resource: str | None = "pods",
    subresource: str | None = None,
    namespace: str | None = "default",
    name: str | None = None,
    api_group: str | None = None,
    code: int | None = 200,
    decision: str = "allow",
    user_agent: str = "kubectl/v1.30.0 (linux/amd64) kubernetes/abcdef",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One event as a JSON-ready dict; fields left None are omitted, as the apiserver omits them."""
    ref: dict[str, Any] = {"resource": resource, "apiVersion": "v1"}
    for key, value in (("subresource", subresource), ("namespace", namespace), ("name", name), ("apiGroup", api_group)):
        if value is not None:
            ref[key] = value
    document: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": audit_id,
        "stage": stage,
        "requestURI": "/api/v1/namespaces/default/pods",
        "verb": verb,
        "user": {"username": user, "groups": list(groups)},
        "sourceIPs": list(ips),
        "userAgent": user_agent,
        "requestReceivedTimestamp": time,
        "stageTimestamp": time,
        "annotations": {"authorization.k8s.io/decision": decision, "authorization.k8s.io/reason": ""},
    }
    if resource is not None:
        document["objectRef"] = ref
    if code is not None:
        document["responseStatus"] = {"metadata": {}, "code": code}
    document.update(extra or {})
    return document


def write_ndjson(path: Path, documents: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(document) + "\n" for document in documents))
    return path


def fill_store(directory: Path, documents: list[dict[str, Any]], cluster: str = "default") -> Path:
    """A real store holding `documents`, sealed to Parquet."""
    raws = [json.dumps(document).encode() for document in documents]
    with Store.open(directory) as store:
        store.append(cluster, [decode_event(raw) for raw in raws], raws)
        store.seal()
    return directory


SOURCE_KINDS = ("files", "store")
"""Both ways a query reads events: log files in place, and a store."""


def open_source(kind: str, directory: Path, documents: list[dict[str, Any]]) -> Source:
    """`documents` as a query source of `kind` (see SOURCE_KINDS), written under `directory`."""
    if kind == "files":
        return open_files([write_ndjson(directory / "audit.log", documents)])
    return open_store(fill_store(directory / "store", documents))
