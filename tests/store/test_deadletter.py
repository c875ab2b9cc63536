"""Dead letters: one line per refused record, one group for a batch of many, capped per day, removed by retention."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from kubetrail.store.deadletter import GROUP_AT, DeadLetterWriter, Refused


def letters(directory: Path) -> list[dict[str, object]]:
    return [json.loads(line) for path in sorted(directory.glob("*.ndjson")) for line in path.read_text().splitlines()]


def test_records_keep_their_bytes_as_text_or_base64(tmp_path: Path) -> None:
    writer = DeadLetterWriter(tmp_path)
    writer.write(source="audit.log", reason="not JSON", raw=b'{"a": "\xff"}', line=3)
    writer.write(source="audit.log", reason="not an event", raw=b'{"kind": "Pod"}', line=4)
    writer.close()
    first, second = letters(tmp_path)
    assert base64.b64decode(str(first["raw_base64"])) == b'{"a": "\xff"}' and first["line"] == 3
    assert second["raw"] == '{"kind": "Pod"}'
    assert writer.count == 2


def test_many_records_of_one_batch_are_one_group(tmp_path: Path) -> None:
    writer = DeadLetterWriter(tmp_path)
    refused = [Refused(b"{}", f"items[{index}]: Object missing required field `level`") for index in range(GROUP_AT)]
    writer.write_many(source="webhook", cluster="prod", refused=refused)
    writer.close()
    (group,) = letters(tmp_path)
    assert group["items"] == GROUP_AT
    assert str(group["raw"]).splitlines() == ["{}"] * GROUP_AT
    assert group["reason"] == f"{GROUP_AT} x Object missing required field `level`"


def test_a_full_day_is_counted_not_written(tmp_path: Path) -> None:
    writer = DeadLetterWriter(tmp_path, max_bytes_per_day=2_000)
    for number in range(100):
        writer.write(source="webhook", reason="bad", raw=b"x" * 100, line=number)
    writer.close()
    size = sum(path.stat().st_size for path in tmp_path.glob("*.ndjson"))
    assert size < 2_000 + 400  # the limit, plus the one line saying it was reached
    assert writer.dropped == 100 - writer.count > 0
    assert "reached 2000 bytes" in str(letters(tmp_path)[-1]["reason"])


def test_retention_removes_old_days(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    for day in (today - timedelta(days=40), today - timedelta(days=2)):
        (tmp_path / f"{day.isoformat()}.ndjson").write_text("{}\n")
    writer = DeadLetterWriter(tmp_path)
    removed = writer.remove_before(today - timedelta(days=30))
    assert [path.stem for path in removed] == [(today - timedelta(days=40)).isoformat()]
    assert date.fromisoformat(next(tmp_path.glob("*.ndjson")).stem) == today - timedelta(days=2)
