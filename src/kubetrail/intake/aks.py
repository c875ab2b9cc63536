"""Azure AKS audit logs from diagnostic settings: records of category `kube-audit` or `kube-audit-admin`.

Accepted as `{"records": [...]}` documents (an Event Hub message body, older storage blobs), JSON Lines of
records (the storage account's hourly `PT1H.json` blobs) or a JSON array. `properties.log` is the apiserver's
Event JSON, as a string (kept byte for byte) or, in some exports, as an object. The cluster is the last part
of `resourceId` (`…/MANAGEDCLUSTERS/<NAME>`), lower-cased because Azure writes resource ids in upper case and
resource names are case-insensitive. Records of other categories (`kube-apiserver`, `guard`, …) are skipped.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from kubetrail.intake.batch import Batch
from kubetrail.intake.lines import lines
from kubetrail.intake.native import add_item

AUDIT_CATEGORIES = frozenset({"kube-audit", "kube-audit-admin"})
_json = msgspec.json.Encoder()
_any = msgspec.json.Decoder()
_DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def cluster_of(resource_id: str) -> str | None:
    """`/SUBSCRIPTIONS/…/MANAGEDCLUSTERS/PROD-AKS` → `prod-aks`."""
    parts = [part for part in resource_id.split("/") if part]
    for index, part in enumerate(parts[:-1]):
        if part.lower() == "managedclusters":
            return parts[index + 1].lower()
    return None


def _record(record: Any, source: str, line: int | None, batches: dict[str | None, Batch]) -> None:
    if not isinstance(record, dict):
        batches.setdefault(None, Batch()).reject(source, line, "a record is not an object")
        return
    category = str(record.get("category") or "")
    if category not in AUDIT_CATEGORIES:
        batches.setdefault(None, Batch()).skip(f"category {category or '(none)'} is not an audit log")
        return
    cluster = cluster_of(str(record.get("resourceId") or ""))
    batch = batches.setdefault(cluster, Batch(cluster=cluster))
    properties = record.get("properties") or {}
    log = properties.get("log") if isinstance(properties, dict) else None
    if isinstance(log, dict):
        log = _json.encode(log).decode()
    if not isinstance(log, str):
        batch.reject(source, line, "a record without a `properties.log` string", _json.encode(record)[:4096])
        return
    add_item(batch, log.strip().encode(), source, line)


def _records_of(document: Any) -> list[Any]:
    records = document.get("records") if isinstance(document, dict) and "records" in document else document
    return records if isinstance(records, list) else [records]


def _is_json(line: bytes) -> bool:
    try:
        _any.decode(line)
    except _DECODE_ERRORS:
        return False
    return True


def decode_aks(chunks: Iterable[bytes], source: str) -> Iterator[Batch]:
    """Batches of events from AKS diagnostic-log records (already inflated)."""
    batches: dict[str | None, Batch] = {}
    numbered = lines(chunks)
    first = next(numbered, None)
    if first is None:
        return
    if not _is_json(first[1]):
        whole = b"\n".join([first[1], *(text for _, text in numbered)])
        try:
            document = _any.decode(whole)
        except _DECODE_ERRORS as error:
            batch = Batch()
            batch.reject(source, None, f"not JSON: {error}", whole[:4096])
            yield batch
            return
        for record in _records_of(document):
            _record(record, source, None, batches)
    else:
        for number, line in itertools.chain([first], numbered):
            try:
                document = _any.decode(line)
            except _DECODE_ERRORS as error:
                batches.setdefault(None, Batch()).reject(source, number, f"not JSON: {error}", line)
                continue
            for record in _records_of(document):
                _record(record, source, number, batches)
            for cluster in [key for key, batch in batches.items() if batch.full]:
                yield batches.pop(cluster)
    for batch in batches.values():
        if not batch.empty:
            yield batch
