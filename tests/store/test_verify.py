"""`verify_store` detects a flipped byte, a removed, an added or a rewritten segment, and a broken chain."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kubetrail.store import Store, verify_store
from tests.store.factory import make_events


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    root = tmp_path / "s"
    with Store.open(root) as store:
        store.append("prod", make_events(0, 30, day="2026-03-18"))
        store.append("prod", make_events(100, 20, day="2026-03-19"))
        store.seal()
        store.append("staging", make_events(200, 10, day="2026-03-19"))
    return root


def _files(root: Path) -> list[Path]:
    return sorted((root / "data").rglob("*.parquet"))


def _kinds(root: Path) -> list[tuple[str, str]]:
    return [(finding.kind, finding.path) for finding in verify_store(root).findings]


def test_an_untouched_store_verifies(store_dir: Path) -> None:
    report = verify_store(store_dir)
    assert report.ok, report.findings
    assert (report.files, report.rows, report.entries) == (3, 60, 2)


def test_a_flipped_byte_is_reported_as_altered(store_dir: Path) -> None:
    target = _files(store_dir)[0]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x40
    target.write_bytes(bytes(data))
    assert _kinds(store_dir) == [("altered", target.relative_to(store_dir).as_posix())]


def test_a_removed_segment_is_reported(store_dir: Path) -> None:
    target = _files(store_dir)[1]
    target.unlink()
    findings = verify_store(store_dir).findings
    assert [(finding.kind, finding.path) for finding in findings] == [
        ("removed", target.relative_to(store_dir).as_posix())
    ]
    assert "20 events" in findings[0].message


def test_an_added_segment_is_reported(store_dir: Path) -> None:
    source = _files(store_dir)[0]
    intruder = source.parent / "seg-9999999999.parquet"
    shutil.copy(source, intruder)
    assert _kinds(store_dir) == [("added", intruder.relative_to(store_dir).as_posix())]


def test_a_removed_event_is_reported_with_the_count(store_dir: Path) -> None:
    target = _files(store_dir)[0]
    table = pq.read_table(target)
    pq.write_table(table.slice(1), target, compression="zstd")
    findings = verify_store(store_dir).findings
    assert [finding.kind for finding in findings] == ["altered"]
    assert "29 events where 30 were sealed (1 removed)" in findings[0].message


def test_an_edited_manifest_entry_breaks_the_chain(store_dir: Path) -> None:
    manifest = store_dir / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    entry = json.loads(lines[0])
    entry["files"][0]["rows"] = 29
    lines[0] = json.dumps(entry)
    manifest.write_text("\n".join(lines) + "\n")
    findings = verify_store(store_dir).findings
    assert any(finding.kind == "chain" and "entry 1" in finding.message for finding in findings)


def test_a_deleted_manifest_entry_breaks_the_chain(store_dir: Path) -> None:
    manifest = store_dir / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    manifest.write_text(lines[1] + "\n")
    kinds = {finding.kind for finding in verify_store(store_dir).findings}
    assert "chain" in kinds
    assert "added" in kinds  # the files of the dropped entry are no longer accounted for


def test_truncating_the_chain_is_caught_with_a_known_head(store_dir: Path) -> None:
    head = verify_store(store_dir).head
    manifest = store_dir / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    removed = json.loads(lines[1])
    manifest.write_text(lines[0] + "\n")
    for record in removed["files"]:
        (store_dir / record["path"]).unlink()
    assert verify_store(store_dir).ok
    report = verify_store(store_dir, expected_head=head)
    assert [finding.kind for finding in report.findings] == ["chain"]


def test_retention_removals_are_accepted_and_a_restored_file_is_not(store_dir: Path, tmp_path: Path) -> None:
    old = next(path for path in _files(store_dir) if "2026-03-18" in str(path))
    backup = tmp_path / "backup.parquet"
    shutil.copy(old, backup)
    with Store.open(store_dir) as store:
        plan = store.apply_retention(retention_days=1, today=date(2026, 3, 20))
    assert [record.path for record in plan.removed] == [old.relative_to(store_dir).as_posix()]
    assert not old.exists()
    report = verify_store(store_dir)
    assert report.ok, report.findings
    assert report.removed_by_retention == 1
    old.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(backup, old)
    findings = verify_store(store_dir).findings
    assert [(finding.kind, "retention" in finding.message) for finding in findings] == [("added", True)]


def test_a_damaged_wal_record_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "s"
    store = Store.open(root)
    store.append("prod", make_events(0, 5))
    store.append("prod", make_events(5, 5))
    store.close(seal=False)
    segment = next((root / "wal").iterdir())
    data = bytearray(segment.read_bytes())
    data[20] ^= 0xFF
    segment.write_bytes(bytes(data))
    findings = verify_store(root).findings
    assert [finding.kind for finding in findings] == ["wal"]
