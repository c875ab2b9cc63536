"""The manifest chain: each entry hashes its canonical JSON and links to the previous one."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetrail.store.errors import StoreError
from kubetrail.store.manifest import GENESIS, FileRecord, Manifest, entry_hash


def _record(name: str) -> FileRecord:
    return FileRecord(
        path=f"data/date=2026-03-19/cluster=prod/{name}",
        sha256="ab" * 32,
        rows=3,
        bytes=10,
        date="2026-03-19",
        cluster="prod",
    )


def test_entries_chain_and_reload(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path / "manifest.jsonl")
    first = manifest.append("seal", files=[_record("a.parquet")], wal=[1])
    second = manifest.append("retention", removed=[_record("a.parquet")], reason="older than 1 days")
    assert first.prev == GENESIS and second.prev == first.hash
    assert entry_hash(second) == second.hash
    reloaded = Manifest(tmp_path / "manifest.jsonl")
    assert reloaded.state.head == second.hash
    assert reloaded.state.live == {} and reloaded.state.retired == {_record("a.parquet").path: 2}
    assert reloaded.state.sealed_wal == {1}


def test_a_torn_last_line_is_dropped_on_open(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    manifest = Manifest(path)
    manifest.append("seal", files=[_record("a.parquet")], wal=[1])
    with open(path, "ab") as handle:
        handle.write(b'{"seq":2,"op":"se')
    reopened = Manifest(path)
    assert reopened.state.seq == 1
    assert path.read_bytes().endswith(b"\n")
    assert reopened.append("seal", files=[_record("b.parquet")], wal=[2]).seq == 2


def test_opening_a_tampered_manifest_for_writing_refuses(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    Manifest(path).append("seal", files=[_record("a.parquet")], wal=[1])
    path.write_text(path.read_text().replace('"rows":3', '"rows":2'))
    with pytest.raises(StoreError, match="hash chain is broken"):
        Manifest(path)
