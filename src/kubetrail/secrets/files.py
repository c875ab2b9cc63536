"""Scanning and redacting audit log files: NDJSON line by line, other JSON documents whole; gzip either way.

A native log is scanned as text, every line (a malformed line can leak a secret too), inflated and told apart
by the intake; a managed-cloud export is read as events by the intake and each event's JSON is scanned.
Lines without secrets are copied as bytes, so a redacted log differs from the original only inside the
replaced values (and has the same number of lines).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from kubetrail.intake import Format, IntakeError, format_of, open_inflated, read_path
from kubetrail.model import encode_event
from kubetrail.secrets.errors import SecretsError
from kubetrail.secrets.scan import Finding, redact_text, scan_text


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _is_ndjson(first: bytes) -> bool:
    stripped = first.strip()
    if not stripped or stripped.startswith(b"["):
        return False
    try:
        orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return False
    return True


def _units(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(first line number, bytes) of each unit to scan: every line of NDJSON, else the whole document once."""
    first = stream.readline()
    if not first:
        return
    if not _is_ndjson(first):
        yield 1, first + stream.read()
        return
    yield 1, first
    yield from enumerate(stream, start=2)


def _open(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        with open_inflated(path) as stream:
            yield from _units(stream)
    except IntakeError as error:
        raise SecretsError(error.message, source=error.source, hint=error.hint) from error


def scan_file(path: Path) -> Iterator[Finding]:
    """Every secret in an audit log file, in file order.

    Managed-cloud exports (EKS, GKE, AKS) are read as events by their readers and each event's JSON is
    scanned; their findings carry no line number.
    """
    if _export_format(path) is not None:
        yield from _scan_export(path)
        return
    for number, data in _open(path):
        findings, _ = scan_text(_decode(data), str(path), number)
        yield from findings


def _export_format(path: Path) -> str | None:
    try:
        found = format_of(path)
    except IntakeError as error:
        raise SecretsError(error.message, source=error.source, hint=error.hint) from error
    return found.value if found not in (None, Format.NATIVE) else None


def _scan_export(path: Path) -> Iterator[Finding]:
    try:
        for batch in read_path(path):
            for event, raw in zip(batch.events, batch.raws, strict=True):
                findings, _ = scan_text(_decode(raw if raw is not None else encode_event(event)), str(path), None)
                yield from findings
            for rejected in batch.rejected:
                findings, _ = scan_text(_decode(rejected.raw), str(path), rejected.line)
                yield from findings
    except IntakeError as error:
        raise SecretsError(error.message, source=error.source, hint=error.hint) from error


def redact_file(path: Path, output: Path) -> list[Finding]:
    """Write `output` (gzip when it ends in .gz) as `path` with secrets replaced; returns what was replaced.

    Only native audit logs (NDJSON or JSON documents) can be redacted byte-exactly; exports are refused.
    """
    kind = _export_format(path)
    if kind is not None:
        raise SecretsError(
            f"this is a {kind.upper()} export; only native audit logs can be redacted in place",
            source=str(path),
            hint="ingest it with `kubetrail ingest --redact`, or scan it with `kubetrail secrets scan`",
        )
    found: list[Finding] = []
    try:
        handle: BinaryIO = (
            gzip.open(output, "wb") if output.suffix == ".gz" else open(output, "wb")  # type: ignore[assignment]  # noqa: SIM115
        )
    except OSError as error:
        raise SecretsError(f"cannot write: {error.strerror or error}", source=str(output)) from error
    with handle:
        for number, data in _open(path):
            text = _decode(data)
            redacted, findings = redact_text(text, str(path), number)
            handle.write(_encode(redacted) if findings else data)
            found.extend(findings)
    return found


def redact_bytes(data: bytes, source: str = "") -> tuple[bytes, list[Finding]]:
    """One event's JSON with its secrets replaced (unchanged bytes when there are none)."""
    redacted, findings = redact_text(_decode(data), source, None)
    return (_encode(redacted) if findings else data), findings
