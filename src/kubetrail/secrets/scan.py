"""Findings and redactions for one JSON text (an NDJSON line, or a whole EventList / array document).

A finding says where a secret is — source, line, auditID, JSON path, kind — and identifies it by the first
12 hex digits of its SHA-256, never by its value. Redaction replaces exactly the secret's characters in the
text with `REDACTED:sha256:<prefix>`, so every other byte stays as it was and the JSON keeps its structure.

Structural findings (`kubetrail.secrets.detect`) come from the decoded event; credential patterns run once
over the raw text and are kept when they fall inside a string of a body or the requestURI.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from kubetrail.secrets.detect import event_hits
from kubetrail.secrets.jsontext import Path, format_path, raw_offsets, string_spans
from kubetrail.secrets.patterns import REDACTED_PREFIX, ascii_lower, find_credentials

_BY_NAME = frozenset({"credential-in-configmap", "credential-in-env"})
"""Findings made from a key's name only: a pattern match inside the value replaces them."""
_SCANNED = frozenset({"requestObject", "responseObject", "requestURI", "annotations", "responseStatus"})
_CREDENTIAL_HINTS = ("bearer", "eyj", "basic ", "passw", "secret", "token", "-----begin", "akia", "asia", "key")
_STRUCTURE_WORDS = ("ecret", "token", "configmap", "last-applied", "passw", "pwd", "credential", "key")


@dataclass(frozen=True, slots=True)
class Finding:
    """One secret in an audit log: where it is and a hash prefix to tell values apart, never the value."""

    source: str
    line: int | None
    audit_id: str
    path: str
    kind: str
    sha256: str

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.source,
            "line": self.line,
            "auditID": self.audit_id,
            "path": self.path,
            "kind": self.kind,
            "sha256": self.sha256,
        }


@dataclass(frozen=True, slots=True)
class Replacement:
    """Characters [start, end) of the text to replace with `text`."""

    start: int
    end: int
    text: str


def hash_prefix(value: str) -> str:
    """The first 12 hex digits of the value's SHA-256 (of its UTF-8 bytes)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def marker(value: str) -> str:
    """What a redacted value becomes."""
    return REDACTED_PREFIX + hash_prefix(value)


def _events(document: Any) -> Iterator[tuple[Path, dict[str, Any]]]:
    if isinstance(document, dict):
        items = document.get("items")
        if "auditID" not in document and isinstance(items, list):
            for index, item in enumerate(items):
                if isinstance(item, dict):
                    yield ("items", index), item
        else:
            yield (), document
    elif isinstance(document, list):
        for index, item in enumerate(document):
            if isinstance(item, dict):
                yield (index,), item


def _decoded(raw: str) -> str:
    try:
        value = json.loads(f'"{raw}"')
    except ValueError:
        return raw
    return value if isinstance(value, str) else raw


@dataclass(frozen=True, slots=True)
class _Found:
    start: int
    end: int
    audit_id: str
    path: Path
    kind: str
    value: str


def _locate(text: str, lowered: str) -> list[_Found]:
    matches = list(find_credentials(text, lowered))
    has_structure = any(word in lowered for word in _STRUCTURE_WORDS) or "?" in text
    if not matches and not has_structure:
        return []
    data = text.encode("utf-8", "surrogateescape")
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        try:  # orjson stops at 1,024 levels; events may nest as deep as the apiserver accepts
            document = msgspec.json.decode(data)
        except (msgspec.DecodeError, RecursionError):
            return []
    events = list(_events(document))
    ids = {prefix: str(event.get("auditID", "")) for prefix, event in events}
    hits = [(prefix, hit) for prefix, event in events for hit in event_hits(event, with_env='"env"' in text)]
    if not hits and not matches:
        return []
    spans = list(string_spans(text))
    by_path = {path: (start, end) for path, start, end in spans}
    found: list[_Found] = []
    for prefix, hit in hits:
        span = by_path.get((*prefix, *hit.path))
        if span is None:
            continue
        offsets = raw_offsets(text[span[0] : span[1]])
        start, end = span[0] + offsets[hit.start], span[0] + offsets[hit.end]
        found.append(_Found(start, end, ids[prefix], hit.path, hit.kind, hit.value))
    prefix_length = len(events[0][0]) if events else 0
    starts = [start for _, start, _ in spans]
    for match in matches:
        index = bisect.bisect_right(starts, match.start) - 1
        if index < 0:
            continue
        path, _span_start, span_end = spans[index]
        relative = path[prefix_length:]
        if match.end > span_end or not relative or relative[0] not in _SCANNED or "managedFields" in relative:
            continue
        overlapping = [item for item in found if match.start < item.end and item.start < match.end]
        if overlapping and (
            match.kind == "password-assignment" or any(item.kind not in _BY_NAME for item in overlapping)
        ):
            continue
        for item in overlapping:  # a specific pattern beats "this key's name sounds secret"
            found.remove(item)
        raw = text[match.start : match.end]
        audit_id = ids.get(path[:prefix_length], "")
        found.append(_Found(match.start, match.end, audit_id, relative, match.kind, _decoded(raw)))
    return found


def _bodiless_without_query(text: str) -> bool:
    """One event with no request or response body, no query string and nothing that looks like a credential
    anywhere (a plain Metadata-level event): nothing to find."""
    if '"requestObject"' in text or '"responseObject"' in text:
        return False
    lowered = ascii_lower(text)
    if any(hint in lowered for hint in _CREDENTIAL_HINTS):
        return False
    start = text.find('"requestURI":"')
    if start < 0 or text.find('"requestURI"', start + 1) >= 0:
        return False
    end = text.find('"', start + 14)
    return end >= 0 and "?" not in text[start + 14 : end]


def scan_text(text: str, source: str, first_line: int | None = 1) -> tuple[list[Finding], list[Replacement]]:
    """The findings in a JSON text and the replacements that redact them; ([], []) for text that is not JSON."""
    if _bodiless_without_query(text):
        return [], []
    found = _locate(text, ascii_lower(text))
    if not found:
        return [], []
    found.sort(key=lambda item: item.start)
    findings: list[Finding] = []
    replacements: list[Replacement] = []
    for item in found:
        line = None if first_line is None else first_line + text.count("\n", 0, item.start)
        digest = hash_prefix(item.value)
        findings.append(Finding(source, line, item.audit_id, format_path(item.path), item.kind, digest))
        replacements.append(Replacement(item.start, item.end, REDACTED_PREFIX + digest))
    return findings, replacements


def apply(text: str, replacements: list[Replacement]) -> str:
    """The text with the replacements made (overlapping ones after the first are skipped)."""
    if not replacements:
        return text
    parts: list[str] = []
    position = 0
    for item in sorted(replacements, key=lambda replacement: (replacement.start, -replacement.end)):
        if item.start < position:
            continue
        parts += [text[position : item.start], item.text]
        position = item.end
    parts.append(text[position:])
    return "".join(parts)


def redact_text(text: str, source: str = "", first_line: int | None = 1) -> tuple[str, list[Finding]]:
    """The text with every secret replaced, and the findings."""
    findings, replacements = scan_text(text, source, first_line)
    return apply(text, replacements), findings
