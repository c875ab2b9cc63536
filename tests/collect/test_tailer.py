"""The file tailer on real files: whole lines only, rotation by rename and by copy-truncate, restarts."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest

from kubetrail.collect.checkpoint import CheckpointStore
from kubetrail.collect.tailer import PipelineSink, TailBatch, Tailer, TailOptions, rotated_siblings
from kubetrail.store import Store, StoreOptions
from tests.serve.helpers import audit_event

FAST = TailOptions(poll_interval=0.01, retry_delay=0.0, rotate_grace=0.0)


class Recorder:
    """A sink that keeps what it was given; `fail` makes the next calls raise, as a full disk would."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.batches: list[TailBatch] = []
        self.fail = 0

    def __call__(self, batch: TailBatch) -> None:
        if self.fail:
            self.fail -= 1
            raise OSError(28, "No space left on device")
        self.batches.append(batch)
        self.lines.extend(batch.lines)


def lines(prefix: str, count: int, start: int = 0) -> list[bytes]:
    return [f'{{"n":"{prefix}{number}"}}'.encode() for number in range(start, start + count)]


def append(path: Path, items: list[bytes]) -> None:
    with open(path, "ab") as handle:
        handle.write(b"".join(item + b"\n" for item in items))


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    folder = tmp_path / "log"
    folder.mkdir()
    return folder / "audit.log"


@pytest.fixture
def checkpoints(tmp_path: Path) -> CheckpointStore:
    return CheckpointStore(tmp_path / "checkpoints")


def tailer(log_file: Path, checkpoints: CheckpointStore, sink: Recorder, **options: object) -> Tailer:
    settings = {**FAST.__dict__, **options}
    return Tailer(log_file, sink, checkpoints, TailOptions(**settings))  # type: ignore[arg-type]


def test_only_whole_lines_are_delivered(log_file: Path, checkpoints: CheckpointStore) -> None:
    sink = Recorder()
    tail = tailer(log_file, checkpoints, sink)
    append(log_file, lines("a", 3))
    with open(log_file, "ab") as handle:
        handle.write(b'{"n":"partial')
    assert tail.poll_once() == 3
    assert tail.poll_once() == 0
    with open(log_file, "ab") as handle:
        handle.write(b'-done"}\n\n')
    assert tail.poll_once() == 1
    assert sink.lines == [*lines("a", 3), b'{"n":"partial-done"}']


def test_a_file_that_appears_later_is_picked_up(log_file: Path, checkpoints: CheckpointStore) -> None:
    sink = Recorder()
    tail = tailer(log_file, checkpoints, sink)
    assert tail.poll_once() == 0
    append(log_file, lines("a", 2))
    assert tail.poll_once() == 2


def test_a_restart_resumes_after_the_last_delivered_line(log_file: Path, checkpoints: CheckpointStore) -> None:
    first = Recorder()
    append(log_file, lines("a", 5))
    tailer(log_file, checkpoints, first).poll_once()
    append(log_file, lines("b", 2))
    second = Recorder()
    tailer(log_file, checkpoints, second).poll_once()
    assert first.lines == lines("a", 5)
    assert second.lines == lines("b", 2)


def test_starting_at_the_end_skips_what_is_there(log_file: Path, checkpoints: CheckpointStore) -> None:
    append(log_file, lines("old", 3))
    sink = Recorder()
    tail = tailer(log_file, checkpoints, sink, from_start=False)
    tail.poll_once()
    append(log_file, lines("new", 1))
    tail.poll_once()
    assert sink.lines == lines("new", 1)


def test_rename_rotation_reads_the_rest_of_the_old_file_first(log_file: Path, checkpoints: CheckpointStore) -> None:
    sink = Recorder()
    tail = tailer(log_file, checkpoints, sink)
    append(log_file, lines("a", 2))
    tail.poll_once()
    append(log_file, lines("b", 2))
    log_file.rename(log_file.with_name("audit-2026-03-19T10-00-00.000.log"))
    append(log_file, lines("c", 2))
    tail.poll_once()
    assert sink.lines == [*lines("a", 2), *lines("b", 2), *lines("c", 2)]
    assert tail.stats.renames == 1


def test_several_renames_between_polls_lose_no_generation(log_file: Path, checkpoints: CheckpointStore) -> None:
    sink = Recorder()
    tail = tailer(log_file, checkpoints, sink)
    append(log_file, lines("a", 1))
    tail.poll_once()
    append(log_file, lines("b", 2))
    log_file.rename(log_file.with_name("audit-2026-03-19T10-00-00.000.log"))
    append(log_file, lines("c", 2))
    log_file.rename(log_file.with_name("audit-2026-03-19T10-00-01.000.log"))
    append(log_file, lines("d", 2))
    tail.poll_once()
    assert sink.lines == [*lines("a", 1), *lines("b", 2), *lines("c", 2), *lines("d", 2)]
    assert tail.stats.backups_read == 1


def test_copy_truncate_reads_the_rest_from_the_copy(log_file: Path, checkpoints: CheckpointStore) -> None:
    sink = Recorder()
    tail = tailer(log_file, checkpoints, sink)
    append(log_file, lines("a", 3))
    tail.poll_once()
    append(log_file, lines("b", 2))
    shutil.copyfile(log_file, log_file.with_name("audit.log.1"))
    os.truncate(log_file, 0)
    append(log_file, lines("c", 1))
    tail.poll_once()
    assert sink.lines == [*lines("a", 3), *lines("b", 2), *lines("c", 1)]
    assert tail.stats.truncations == 1


def test_copy_truncate_is_noticed_even_when_the_new_content_is_longer(
    log_file: Path, checkpoints: CheckpointStore
) -> None:
    sink = Recorder()
    tail = tailer(log_file, checkpoints, sink)
    append(log_file, lines("a", 2))
    tail.poll_once()
    shutil.copyfile(log_file, log_file.with_name("audit.log.1"))
    os.truncate(log_file, 0)
    append(log_file, lines("longer-than-before", 10))
    tail.poll_once()
    assert sink.lines == [*lines("a", 2), *lines("longer-than-before", 10)]


def test_an_unterminated_last_line_of_a_rotated_file_is_delivered_not_dropped(
    log_file: Path, checkpoints: CheckpointStore
) -> None:
    sink = Recorder()
    tail = tailer(log_file, checkpoints, sink)
    append(log_file, lines("a", 1))
    with open(log_file, "ab") as handle:
        handle.write(b'{"n":"torn')
    tail.poll_once()
    log_file.rename(log_file.with_name("audit-2026-03-19T10-00-00.000.log"))
    append(log_file, lines("c", 1))
    tail.poll_once()
    assert sink.lines == [*lines("a", 1), b'{"n":"torn', *lines("c", 1)]


def test_a_restart_after_a_rename_while_stopped(log_file: Path, checkpoints: CheckpointStore) -> None:
    append(log_file, lines("a", 2))
    tailer(log_file, checkpoints, Recorder()).poll_once()
    append(log_file, lines("b", 2))
    log_file.rename(log_file.with_name("audit-2026-03-19T10-00-00.000.log"))
    append(log_file, lines("c", 2))
    sink = Recorder()
    tail = tailer(log_file, checkpoints, sink)
    tail.poll_once()
    tail.poll_once()
    assert sink.lines == [*lines("b", 2), *lines("c", 2)]


def test_a_restart_after_a_rename_and_compression_while_stopped(log_file: Path, checkpoints: CheckpointStore) -> None:
    append(log_file, lines("a", 2))
    tailer(log_file, checkpoints, Recorder()).poll_once()
    append(log_file, lines("b", 2))
    backup = log_file.with_name("audit-2026-03-19T10-00-00.000.log")
    log_file.rename(backup)
    with open(backup, "rb") as source, gzip.open(backup.with_name(backup.name + ".gz"), "wb") as target:
        shutil.copyfileobj(source, target)
    backup.unlink()
    append(log_file, lines("c", 2))
    sink = Recorder()
    tailer(log_file, checkpoints, sink).poll_once()
    assert sink.lines == [*lines("b", 2), *lines("c", 2)]


def test_a_restart_after_copy_truncate_while_stopped(log_file: Path, checkpoints: CheckpointStore) -> None:
    append(log_file, lines("a", 2))
    tailer(log_file, checkpoints, Recorder()).poll_once()
    append(log_file, lines("b", 2))
    shutil.copyfile(log_file, log_file.with_name("audit.log.1"))
    os.truncate(log_file, 0)
    append(log_file, lines("c", 3))
    sink = Recorder()
    tailer(log_file, checkpoints, sink).poll_once()
    assert sink.lines == [*lines("b", 2), *lines("c", 3)]


def test_a_failing_sink_gets_the_same_lines_again_and_nothing_is_skipped(
    log_file: Path, checkpoints: CheckpointStore
) -> None:
    sink = Recorder()
    tail = tailer(log_file, checkpoints, sink)
    append(log_file, lines("a", 3))
    sink.fail = 2
    assert tail.poll_once() == 0
    assert tail.poll_once() == 0
    assert checkpoints.load(log_file) is None
    assert tail.poll_once() == 3
    assert sink.lines == lines("a", 3)
    assert tail.stats.failures == 2


def test_rotated_siblings_are_the_backup_names_of_lumberjack_and_logrotate(tmp_path: Path) -> None:
    names = [
        "audit.log",
        "audit-2026-03-19T10-00-00.000.log",
        "audit-2026-03-19T10-00-00.000.log.gz",
        "audit.log.1",
        "audit.log.2.gz",
        "audit.log-20260319",
        "audit-policy.yaml",
        "other.log",
    ]
    for name in names:
        (tmp_path / name).write_text("")
    found = [Path(path).name for path in rotated_siblings(str(tmp_path / "audit.log"))]
    assert found == sorted(names[1:6])


def test_the_store_sink_stores_events_and_dead_letters_bad_lines(tmp_path: Path, log_file: Path) -> None:
    store = Store.open(tmp_path / "store", StoreOptions(background_seal=False))
    try:
        sink = PipelineSink(store, "files")
        tail = Tailer(log_file, sink, CheckpointStore(tmp_path / "cp"), FAST)
        events = [json.dumps(audit_event(number)).encode() for number in range(3)]
        append(log_file, [events[0], b"{not json", events[1], events[2], events[1]])
        tail.poll_once()
        rows = store.query_connection().execute("select cluster, audit_id from events order by audit_id").fetchall()
        assert rows == [("files", audit_event(number)["auditID"]) for number in range(3)]
        assert sink.rejected == 1
        store.dead_letters.flush()
        (letter,) = [
            json.loads(line)
            for path in store.layout.deadletter_dir.glob("*.ndjson")
            for line in path.read_text().splitlines()
        ]
        assert letter["raw"] == "{not json" and str(log_file) in letter["source"]
    finally:
        store.close()


def test_copy_truncate_right_after_a_partial_first_line_is_noticed(
    log_file: Path, checkpoints: CheckpointStore
) -> None:
    sink = Recorder()
    tail = tailer(log_file, checkpoints, sink)
    with open(log_file, "ab") as handle:
        handle.write(b'{"n":"first-')
    tail.poll_once()
    with open(log_file, "ab") as handle:
        handle.write(b'half"}\n')
    append(log_file, lines("a", 2))
    shutil.copyfile(log_file, log_file.with_name("audit.log.1"))
    os.truncate(log_file, 0)
    append(log_file, lines("after-the-truncation", 3))
    tail.poll_once()
    assert sink.lines == [b'{"n":"first-half"}', *lines("a", 2), *lines("after-the-truncation", 3)]


def test_a_copy_truncate_then_a_rename_between_two_looks(log_file: Path, checkpoints: CheckpointStore) -> None:
    sink = Recorder()
    tail = tailer(log_file, checkpoints, sink)
    append(log_file, lines("a", 3))
    tail.poll_once()
    append(log_file, lines("a", 2, start=3))
    shutil.copyfile(log_file, log_file.with_name("audit.log.1"))
    os.truncate(log_file, 0)
    append(log_file, lines("b", 2))
    log_file.rename(log_file.with_name("audit-2026-03-19T10-00-00.000.log"))
    append(log_file, lines("c", 2))
    tail.poll_once()
    assert sink.lines == [*lines("a", 5), *lines("b", 2), *lines("c", 2)]
