"""Azure AKS audit logs from diagnostic settings: records of category `kube-audit` or `kube-audit-admin`.

Accepted as `{"records": [...]}` documents (Event Hubs, older storage blobs), JSON Lines of records (storage
account `PT1H.json` blobs) or a JSON array. `properties.log` is the apiserver's Event JSON, stored unchanged.
The cluster is the last part of `resourceId` (`…/MANAGEDCLUSTERS/<NAME>`), lower-cased because Azure writes
resource ids in upper case and resource names are case-insensitive. Other categories are skipped.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from kubetrail.collect.readers.base import ReadBatch, Rejected, open_input, short_reason
from kubetrail.model import EventDecodeError, decode_event
from kubetrail.model.codec import iter_lines

AUDIT_CATEGORIES = frozenset({"kube-audit", "kube-audit-admin"})
_json = msgspec.json.Encoder()


def cluster_of(resource_id: str) -> str | None:
    """`/SUBSCRIPTIONS/…/MANAGEDCLUSTERS/PROD-AKS` → `prod-aks`."""
    parts = [part for part in resource_id.split("/") if part]
    for index, part in enumerate(parts[:-1]):
        if part.lower() == "managedclusters":
            return parts[index + 1].lower()
    return None


def _record(record: Any, source: str, line: int | None, batches: dict[str | None, ReadBatch]) -> None:
    if not isinstance(record, dict):
        batches.setdefault(None, ReadBatch()).rejected.append(Rejected(source, line, "a record is not an object", b""))
        return
    category = str(record.get("category") or "")
    if category not in AUDIT_CATEGORIES:
        batches.setdefault(None, ReadBatch()).skip(f"category {category or '(none)'} is not an audit log")
        return
    cluster = cluster_of(str(record.get("resourceId") or ""))
    batch = batches.setdefault(cluster, ReadBatch(cluster=cluster))
    properties = record.get("properties") or {}
    log = properties.get("log") if isinstance(properties, dict) else None
    if isinstance(log, dict):
        log = _json.encode(log).decode()
    if not isinstance(log, str):
        batch.rejected.append(Rejected(source, line, "record without a `properties.log` string", _json.encode(record)))
        return
    raw = log.strip().encode()
    try:
        batch.add(decode_event(raw, source=source, line=line), raw)
    except EventDecodeError as error:
        batch.rejected.append(Rejected(source, line, short_reason(error.message), raw))


def _records_of(document: Any) -> list[Any]:
    records = document.get("records") if isinstance(document, dict) and "records" in document else document
    return records if isinstance(records, list) else [records]


def read_aks(path: Path) -> Iterator[ReadBatch]:
    """Batches of events from AKS diagnostic-log exports (plain or gzip)."""
    batches: dict[str | None, ReadBatch] = {}
    with open_input(path) as source:
        lines = iter_lines(source.stream)
        first = next(lines, None)
        if first is None:
            return
        if not _is_json(first[1]):
            whole = b"\n".join([first[1], *(text for _, text in lines)])
            try:
                document = msgspec.json.decode(whole)
            except msgspec.DecodeError as error:
                batch = ReadBatch(position=source.position)
                batch.rejected.append(Rejected(source.source, None, f"not JSON: {error}", whole[:4096]))
                yield batch
                return
            for record in _records_of(document):
                _record(record, source.source, None, batches)
        else:
            for number, line in itertools.chain([first], lines):
                try:
                    document = msgspec.json.decode(line)
                except msgspec.DecodeError as error:
                    batches.setdefault(None, ReadBatch()).rejected.append(
                        Rejected(source.source, number, f"not JSON: {error}", line)
                    )
                    continue
                for record in _records_of(document):
                    _record(record, source.source, number, batches)
                for cluster in [key for key, batch in batches.items() if batch.full]:
                    batch = batches.pop(cluster)
                    batch.position = source.position
                    yield batch
        position = source.position
    for batch in batches.values():
        batch.position = position
        yield batch


def _is_json(line: bytes) -> bool:
    try:
        msgspec.json.decode(line)
    except msgspec.DecodeError:
        return False
    return True
