"""Tell an input's format from its first bytes: a native audit log, or an EKS, GKE or AKS export."""

from __future__ import annotations

import enum
import json
import re

from kubetrail.intake.inflate import is_gzip

SNIFF_BYTES = 64 << 10
"""How much of an input (after gzip) is looked at to tell its format."""


class Format(enum.StrEnum):
    """The input formats; the values are what `--format` takes."""

    NATIVE = "k8s"
    EKS = "eks"
    GKE = "gke"
    AKS = "aks"


FORMATS: tuple[str, ...] = tuple(item.value for item in Format)
EXPORT_LINE = re.compile(rb"^\d{4}-\d{2}-\d{2}T[0-9:.]+(Z|[+-]\d{2}:?\d{2}) ")
"""A CloudWatch Logs export line (S3 export task): `<RFC 3339 time> <message>`."""

_raw_decoder = json.JSONDecoder()
_LEADING_KEYS = re.compile(rb'[{,]\s*"([A-Za-z@][A-Za-z0-9_@.-]{0,40})"\s*:')
"""Object keys near the start, for a head that ends inside its first document (a large delivery)."""


def _first_object(text: bytes) -> dict[str, object] | None:
    """The first JSON object of the input (the first item of an array), if the head holds it whole."""
    body = text[1:].lstrip() if text.startswith(b"[") else text
    try:
        value, _ = _raw_decoder.raw_decode(body.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):
        return None
    if isinstance(value, list) and value:
        value = value[0]
    return value if isinstance(value, dict) else None


def _by_keys(first: dict[str, object]) -> Format | None:
    if "protoPayload" in first:
        return Format.GKE
    if "awslogs" in first or "logEvents" in first or "messageType" in first:
        return Format.EKS
    if "records" in first and "requestId" in first:
        return Format.EKS  # an Amazon Data Firehose HTTP endpoint request
    records = first.get("records")
    if isinstance(records, list):
        head = records[0] if records else {}
        if isinstance(head, dict) and "data" in head and "category" not in head:
            return Format.EKS  # an Amazon Data Firehose HTTP endpoint request
        return Format.AKS
    if "category" in first and "properties" in first:
        return Format.AKS
    if "events" in first and "kind" not in first:
        return Format.EKS
    if first.get("kind") in ("Event", "EventList") or "auditID" in first:
        return Format.NATIVE
    return None


def sniff(head: bytes) -> Format | None:
    """The format of an input given its first (inflated) bytes, or None when it cannot tell."""
    if is_gzip(head):
        return None
    text = head.lstrip()
    if EXPORT_LINE.match(text):
        return Format.EKS
    first = _first_object(text)
    if first is not None:
        found = _by_keys(first)
        if found is not None:
            return found
    keys = _LEADING_KEYS.findall(text[:4096])
    if keys:
        found = _by_keys(dict.fromkeys(key.decode("utf-8", "replace") for key in keys))
        if found is not None:
            return found
    if re.search(rb"(?m)^protoPayload:", text) or b'"protoPayload"' in text:
        return Format.GKE
    if b'"records"' in text[:2048] and b'"category"' in text:
        return Format.AKS
    if b'"logEvents"' in text[:2048] or b'"logStreamName"' in text[:4096] or b'"awslogs"' in text[:2048]:
        return Format.EKS
    if b'"auditID"' in text or b'"kind"' in text:
        return Format.NATIVE
    return None
