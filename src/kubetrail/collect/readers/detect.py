"""Recognise an input's format from its first record: native audit log, EKS, GKE or AKS export."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from kubetrail.collect.readers.base import ReaderError, head

FORMATS = ("k8s", "eks", "gke", "aks")
_EKS_EXPORT_LINE = re.compile(rb"^\d{4}-\d{2}-\d{2}T[0-9:.]+(Z|[+-]\d{2}:?\d{2}) ")


def _first_object(data: bytes) -> dict[str, object] | None:
    text = data.lstrip()
    if text.startswith(b"["):
        text = text[1:].lstrip()
    line = text.split(b"\n", 1)[0]
    for candidate in (line, text):
        try:
            value = msgspec.json.decode(candidate)
        except msgspec.DecodeError:
            continue
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, dict):
            return value
    return None


def format_of(data: bytes) -> str | None:
    """The format of an input given its first bytes, or None when it cannot tell."""
    text = data.lstrip()
    if _EKS_EXPORT_LINE.match(text):
        return "eks"
    first = _first_object(text)
    if first is not None:
        if "protoPayload" in first:
            return "gke"
        if "records" in first or ("category" in first and "properties" in first):
            return "aks"
        if "logEvents" in first or "messageType" in first or ("events" in first and "kind" not in first):
            return "eks"
        if first.get("kind") in ("Event", "EventList") or "auditID" in first:
            return "k8s"
    if re.search(rb"(?m)^protoPayload:", text):
        return "gke"
    if b'"protoPayload"' in text:
        return "gke"
    if b'"records"' in text[:2048] and b'"category"' in text:
        return "aks"
    if b'"logEvents"' in text[:2048] or b'"logStreamName"' in text[:4096]:
        return "eks"
    if b'"auditID"' in text or b'"kind"' in text:
        return "k8s"
    return None


def detect_format(path: Path) -> str:
    """The format of a file, or a ReaderError that says how to choose one."""
    found = format_of(head(path))
    if found is None:
        raise ReaderError(
            "cannot tell the format of this file",
            source=str(path),
            hint=f"pass --format ({', '.join(FORMATS)})",
        )
    return found
