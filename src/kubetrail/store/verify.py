"""`verify`: prove that sealed data is exactly what the manifest chain says, or say precisely what differs.

Checks, in order: every manifest line parses, links to the previous line's hash and hashes to its own `hash`;
every live file exists with the listed SHA-256 (a changed hash with fewer rows means events were removed);
no Parquet file exists that the chain does not list (or that retention removed); WAL records are intact, and
no damaged WAL segment (or the `wal/*.damaged` copy kept when one was repaired) awaits the operator.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path

from kubetrail.store.layout import TMP_SUFFIX, Layout
from kubetrail.store.manifest import GENESIS, ManifestState, entry_hash, file_sha256, parse_lines
from kubetrail.store.wal import damaged_copies, scan_segment


@dataclass(frozen=True)
class Finding:
    """One discrepancy: `kind` is chain, altered, removed, added or wal; `path` is relative to the store."""

    kind: str
    path: str
    message: str
    hint: str = ""
    """How to resolve it, when that is not obvious."""

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}: {self.message}"


@dataclass
class VerifyReport:
    """The outcome of `verify_store`: OK when there are no findings (notes are informational)."""

    root: Path
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    entries: int = 0
    files: int = 0
    rows: int = 0
    bytes: int = 0
    removed_by_retention: int = 0
    wal_segments: int = 0
    wal_records: int = 0
    head: str = GENESIS

    @property
    def ok(self) -> bool:
        return not self.findings


def _rows_in(path: Path) -> int | None:
    import pyarrow.parquet as pq  # loaded by verification only, not by every user of the store package

    try:
        return int(pq.read_metadata(path).num_rows)
    except (OSError, ValueError):
        return None


def _check_chain(layout: Layout, report: VerifyReport) -> ManifestState:
    state = ManifestState()
    lines, torn = parse_lines(layout.manifest)
    name = layout.manifest.name
    expected_seq = 1
    for line in lines:
        entry = line.entry
        if entry is None:
            report.findings.append(Finding("chain", name, f"line {line.number}: {line.problem}"))
            continue
        if entry_hash(entry) != entry.hash:
            report.findings.append(
                Finding("chain", name, f"line {line.number} (entry {entry.seq}) was altered: its hash does not match")
            )
        if entry.prev != state.head:
            report.findings.append(
                Finding(
                    "chain",
                    name,
                    f"line {line.number} (entry {entry.seq}) does not follow the previous entry: "
                    "an entry before it was removed, altered or reordered",
                )
            )
        if entry.seq != expected_seq:
            report.findings.append(
                Finding("chain", name, f"line {line.number}: entry {entry.seq} where entry {expected_seq} was expected")
            )
        expected_seq = entry.seq + 1
        state.apply(entry)
    if torn:
        report.notes.append("the manifest ends with an incomplete line (an interrupted append); it is ignored")
    report.entries = len(lines)
    report.head = state.head
    return state


def _check_files(layout: Layout, state: ManifestState, report: VerifyReport) -> None:
    for relative, record in sorted(state.live.items()):
        path = layout.absolute(relative)
        if not path.exists():
            report.findings.append(
                Finding("removed", relative, f"listed in the manifest with {record.rows} events but missing")
            )
            continue
        if file_sha256(path) != record.sha256:
            rows = _rows_in(path)
            detail = "its SHA-256 does not match the manifest"
            if rows is None:
                detail += " and it is not readable Parquet"
            elif rows < record.rows:
                detail += f"; it has {rows} events where {record.rows} were sealed ({record.rows - rows} removed)"
            elif rows > record.rows:
                detail += f"; it has {rows} events where {record.rows} were sealed ({rows - record.rows} added)"
            else:
                detail += f" (same {rows} events, contents changed)"
            report.findings.append(Finding("altered", relative, detail))
            continue
        report.files += 1
        report.rows += record.rows
        report.bytes += record.bytes
    report.removed_by_retention = len(state.retired)
    for path in layout.data_files():
        relative = layout.relative(path)
        if relative in state.live:
            continue
        if relative in state.retired:
            report.findings.append(
                Finding(
                    "added",
                    relative,
                    f"retention removed it in entry {state.retired[relative]}, but it is present again",
                )
            )
        else:
            report.findings.append(Finding("added", relative, "not listed in the manifest"))
    if layout.data_dir.is_dir():
        for temporary in layout.data_dir.rglob(f"*{TMP_SUFFIX}"):
            report.notes.append(f"{layout.relative(temporary)}: an unfinished seal; the next open cleans it up")


REPAIR_WAL_HINT = (
    "the next writer to open the store (`kubetrail serve` or `kubetrail ingest` on it) recovers every intact "
    "record and keeps the damaged segment as wal/N.wal.damaged; then check and remove that copy"
)
TORN_WAL_HINT = (
    "a record cut short is never acknowledged (a write that failed, e.g. on a full disk, when the writer could "
    "not take it back); if nobody truncated the file, the next writer to open the store cuts it"
)
RESOLVE_WAL_HINT = (
    "its intact records were recovered; what it skipped is lost unless you can salvage it from this copy. "
    "Check it, then delete it or move it out of wal/ (e.g. next to the incident notes): verify passes again "
    "once no *.damaged file is left in wal/"
)


def _check_wal(layout: Layout, state: ManifestState, report: VerifyReport) -> None:
    # Damage is unresolved while a damaged segment or the copy kept when one was repaired is in wal/.
    for kept in damaged_copies(layout.wal_dir):
        try:
            copy = scan_segment(kept, repair=False)
            detail = copy.damage_summary() or copy.problem or "no damage found in it now"
        except OSError as error:
            detail = f"cannot read it: {error.strerror or error}"
        report.findings.append(
            Finding(
                "wal",
                layout.relative(kept),
                f"a damaged WAL segment, kept when the store recovered its intact records: {detail}",
                hint=RESOLVE_WAL_HINT,
            )
        )
    segments = layout.wal_segments()
    report.wal_segments = len(segments)
    last = len(segments) - 1
    for position, (segment_id, path) in enumerate(segments):
        scan = scan_segment(path, repair=False)
        report.wal_records += len(scan.batches)
        relative = layout.relative(path)
        if segment_id in state.sealed_wal:  # its events are in the chain; the next open deletes it unread
            report.notes.append(f"{relative}: already sealed; the next open removes it")
            continue
        if scan.damaged:
            report.findings.append(
                Finding("wal", relative, f"damaged, not repaired yet: {scan.damage_summary()}", hint=REPAIR_WAL_HINT)
            )
        elif scan.torn and position == last:
            report.notes.append(f"{relative}: {scan.problem} (an interrupted write; the next open truncates it)")
        elif scan.torn:
            report.findings.append(
                Finding("wal", relative, f"{scan.problem}, but it is not the last segment", hint=TORN_WAL_HINT)
            )


def verify_store(root: str | Path, *, expected_head: str | None = None) -> VerifyReport:
    """Check a store directory; takes the manifest lock shared so that a concurrent seal is not half-seen."""
    layout = Layout(Path(root))
    report = VerifyReport(root=layout.root)
    if not layout.root.is_dir():
        report.findings.append(Finding("chain", str(layout.root), "no store at this path"))
        return report
    fd = os.open(layout.manifest_lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        state = _check_chain(layout, report)
        _check_files(layout, state, report)
        _check_wal(layout, state, report)
    finally:
        os.close(fd)
    if expected_head is not None:
        lines, _ = parse_lines(layout.manifest)
        hashes = {line.entry.hash for line in lines if line.entry is not None}
        if expected_head not in hashes:
            report.findings.append(
                Finding(
                    "chain",
                    layout.manifest.name,
                    f"the expected entry {expected_head[:16]}… is not in the chain: entries were removed from its end",
                )
            )
    return report
