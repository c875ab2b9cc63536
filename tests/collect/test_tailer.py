"""The file tailer on real files: whole lines only, rotation by rename and by copy-truncate, restarts."""

from __future__ import annotations

import gzip
import json
import logging
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
        events = [json.dumps(audit_event(number)).encode() for number in range(4)]
        deep = events[3][:-1] + b', "requestObject": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
        append(log_file, [events[0], b"{not json", events[1], deep, events[2], events[1]])
        tail.poll_once()
        rows = store.query_connection().execute("select cluster, audit_id from events order by audit_id").fetchall()
        assert rows == [("files", audit_event(number)["auditID"]) for number in range(3)]
        assert sink.rejected == 2  # the deep line is passed, not retried for ever
        store.dead_letters.flush()
        first, second = [
            json.loads(line)
            for path in store.layout.deadletter_dir.glob("*.ndjson")
            for line in path.read_text().splitlines()
        ]
        assert first["raw"] == "{not json" and str(log_file) in first["source"]
        assert "nested too deeply" in second["reason"]
        assert tail.poll_once() == 0
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


# ----- generations rotated away and compressed while nobody was reading ----------------------------------------


def compress(backup: Path) -> Path:
    """gzip a backup the way lumberjack (`--audit-log-compress`) and logrotate (`compress`) do: write
    `<name>.gz` next to it, then delete the plain file."""
    target = backup.with_name(backup.name + ".gz")
    with open(backup, "rb") as source, gzip.open(target, "wb") as sink:
        shutil.copyfileobj(source, sink)
    backup.unlink()
    return target


def lumberjack_rotate(log_file: Path, stamp: str) -> Path:
    """kube-apiserver's own rotation with `--audit-log-compress`: rename to `audit-<time>.log`, gzip it."""
    backup = log_file.with_name(f"audit-{stamp}.log")
    log_file.rename(backup)
    return compress(backup)


def logrotate_create(log_file: Path, *, delaycompress: bool) -> None:
    """logrotate `create` + `compress` (and maybe `delaycompress`): shift `audit.log.N.gz` up, rename the log
    to `audit.log.1`, create an empty log, gzip `audit.log.1` (or, delayed, the previous one, now `.2`)."""
    for index in range(9, 0, -1):
        older = log_file.with_name(f"audit.log.{index}.gz")
        if older.exists():
            older.rename(log_file.with_name(f"audit.log.{index + 1}.gz"))
    if delaycompress and log_file.with_name("audit.log.1").exists():
        log_file.with_name("audit.log.1").rename(log_file.with_name("audit.log.2"))
        compress(log_file.with_name("audit.log.2"))
    log_file.rename(log_file.with_name("audit.log.1"))
    log_file.touch()
    if not delaycompress:
        compress(log_file.with_name("audit.log.1"))


def set_mtime(path: Path, seconds: float) -> None:
    os.utime(path, (seconds, seconds))


def test_a_restart_reads_every_generation_renamed_and_compressed_while_stopped_once_in_order(
    log_file: Path, checkpoints: CheckpointStore
) -> None:
    first = Recorder()
    tail = tailer(log_file, checkpoints, first)
    append(log_file, lines("a", 3))
    tail.poll_once()
    tail.stop()
    append(log_file, lines("b", 3))
    checkpointed = lumberjack_rotate(log_file, "2026-03-19T10-00-00.000")
    append(log_file, lines("c", 3))
    newer = lumberjack_rotate(log_file, "2026-03-19T10-05-00.000")
    append(log_file, lines("d", 3))
    newest = lumberjack_rotate(log_file, "2026-03-19T10-10-00.000")
    append(log_file, lines("e", 2))
    # lumberjack's mill compresses pending backups newest first: modification times say nothing of the order
    set_mtime(checkpointed, 3_000)
    set_mtime(newest, 2_000)
    set_mtime(newer, 1_000)

    sink = Recorder()
    restarted = tailer(log_file, checkpoints, sink)
    restarted.poll_once()
    restarted.poll_once()
    assert first.lines == lines("a", 3)
    assert sink.lines == [*lines("b", 3), *lines("c", 3), *lines("d", 3), *lines("e", 2)]
    assert restarted.stats.lost_rotations == 0
    assert restarted.stats.backups_read == 2
    restarted.stop()

    append(log_file, lines("f", 1))
    again = Recorder()
    tailer(log_file, checkpoints, again).poll_once()
    assert again.lines == lines("f", 1)


@pytest.mark.parametrize("delaycompress", [False, True], ids=["compress", "delaycompress"])
def test_a_restart_reads_every_generation_logrotate_compressed_while_stopped_once_in_order(
    log_file: Path, checkpoints: CheckpointStore, delaycompress: bool
) -> None:
    append(log_file, lines("old", 2))
    logrotate_create(log_file, delaycompress=delaycompress)
    first = Recorder()
    tail = tailer(log_file, checkpoints, first)
    append(log_file, lines("a", 3))
    tail.poll_once()
    tail.stop()
    for generation in ("b", "c", "d"):
        append(log_file, lines(generation, 3))
        logrotate_create(log_file, delaycompress=delaycompress)
    append(log_file, lines("e", 2))
    names = sorted(path.name for path in log_file.parent.iterdir())
    if delaycompress:
        assert names == ["audit.log", "audit.log.1", "audit.log.2.gz", "audit.log.3.gz", "audit.log.4.gz"]
    else:
        assert names == ["audit.log", "audit.log.1.gz", "audit.log.2.gz", "audit.log.3.gz", "audit.log.4.gz"]

    sink = Recorder()
    restarted = tailer(log_file, checkpoints, sink)
    restarted.poll_once()
    restarted.poll_once()
    assert first.lines == lines("a", 3)
    assert sink.lines == [*lines("b", 3), *lines("c", 3), *lines("d", 3), *lines("e", 2)]
    assert restarted.stats.lost_rotations == 0
    restarted.stop()

    again = Recorder()
    tailer(log_file, checkpoints, again).poll_once()
    assert again.lines == []


def test_a_checkpointed_generation_deleted_while_stopped_is_reported_and_the_newer_ones_are_read(
    log_file: Path, checkpoints: CheckpointStore, caplog: pytest.LogCaptureFixture
) -> None:
    tail = tailer(log_file, checkpoints, Recorder())
    append(log_file, lines("a", 3))
    tail.poll_once()
    tail.stop()
    append(log_file, lines("lost", 3))
    lumberjack_rotate(log_file, "2026-03-19T10-00-00.000").unlink()  # pruned (--audit-log-maxbackup)
    append(log_file, lines("c", 3))
    lumberjack_rotate(log_file, "2026-03-19T10-05-00.000")
    append(log_file, lines("d", 2))

    sink = Recorder()
    restarted = tailer(log_file, checkpoints, sink)
    with caplog.at_level(logging.WARNING, logger="kubetrail.collect.tailer"):
        restarted.poll_once()
        restarted.poll_once()
    assert sink.lines == [*lines("c", 3), *lines("d", 2)]
    assert restarted.stats.lost_rotations == 1
    (warning,) = [record for record in caplog.records if record.levelno == logging.WARNING]
    message = warning.getMessage()
    assert "LOST" in message and f"{log_file} (device" in message
    read = sum(len(line) + 1 for line in lines("a", 3))
    assert f"after byte {read}:" in message
    assert "with audit-2026-03-19T10-05-00.000.log.gz, then the live file from its start" in message


def test_a_checkpoint_of_an_older_version_still_loads_and_resumes(log_file: Path, checkpoints: CheckpointStore) -> None:
    append(log_file, lines("a", 2))
    tailer(log_file, checkpoints, Recorder()).poll_once()
    saved = json.loads(checkpoints.file_for(log_file).read_text())
    assert saved.pop("name") == str(log_file)
    checkpoints.file_for(log_file).write_text(json.dumps(saved))
    append(log_file, lines("b", 1))
    lumberjack_rotate(log_file, "2026-03-19T10-00-00.000")
    append(log_file, lines("c", 1))
    sink = Recorder()
    tailer(log_file, checkpoints, sink).poll_once()
    assert sink.lines == [*lines("b", 1), *lines("c", 1)]


def test_renames_and_compression_between_two_looks_lose_no_generation(
    log_file: Path, checkpoints: CheckpointStore
) -> None:
    sink = Recorder()
    tail = tailer(log_file, checkpoints, sink)
    append(log_file, lines("a", 1))
    tail.poll_once()
    append(log_file, lines("b", 2))
    lumberjack_rotate(log_file, "2026-03-19T10-00-00.000")  # still open: finished from the open file
    append(log_file, lines("c", 2))
    lumberjack_rotate(log_file, "2026-03-19T10-00-01.000")
    append(log_file, lines("d", 2))
    lumberjack_rotate(log_file, "2026-03-19T10-00-02.000")
    append(log_file, lines("e", 2))
    tail.poll_once()
    tail.poll_once()
    assert sink.lines == [*lines("a", 1), *lines("b", 2), *lines("c", 2), *lines("d", 2), *lines("e", 2)]
    assert tail.stats.backups_read == 2


def test_a_backup_read_plain_is_not_read_again_once_compressed(log_file: Path, checkpoints: CheckpointStore) -> None:
    sink = Recorder()
    tail = tailer(log_file, checkpoints, sink)
    append(log_file, lines("a", 2))
    tail.poll_once()
    append(log_file, lines("b", 2))
    first = log_file.with_name("audit-2026-03-19T10-00-00.000.log")
    log_file.rename(first)
    append(log_file, lines("c", 2))
    second = log_file.with_name("audit-2026-03-19T10-00-01.000.log")
    log_file.rename(second)
    append(log_file, lines("d", 2))
    # compression of the unseen backup under way: its `.gz` half written, the plain file still there
    data = gzip.compress(second.read_bytes())
    second.with_name(second.name + ".gz").write_bytes(data[: len(data) // 2])
    tail.poll_once()
    assert sink.lines == [*lines("a", 2), *lines("b", 2), *lines("c", 2), *lines("d", 2)]
    second.with_name(second.name + ".gz").write_bytes(data)
    second.unlink()
    compress(first)
    tail.poll_once()
    tail.stop()
    restarted = Recorder()
    again = tailer(log_file, checkpoints, restarted)
    again.poll_once()
    assert sink.lines == [*lines("a", 2), *lines("b", 2), *lines("c", 2), *lines("d", 2)]
    assert restarted.lines == []
    assert tail.stats.backups_read == 1 and again.stats.backups_read == 0


def test_a_corrupt_compressed_backup_is_read_as_far_as_it_goes_and_counted(
    log_file: Path, checkpoints: CheckpointStore, caplog: pytest.LogCaptureFixture
) -> None:
    tail = tailer(log_file, checkpoints, Recorder())
    append(log_file, lines("a", 1))
    tail.poll_once()
    tail.stop()
    append(log_file, lines("b", 1))
    lumberjack_rotate(log_file, "2026-03-19T10-00-00.000")
    append(log_file, padded("c", 500))
    broken = lumberjack_rotate(log_file, "2026-03-19T10-00-01.000")
    broken.write_bytes(broken.read_bytes()[:-12])  # cut short, past its first line: no end of member
    append(log_file, lines("d", 1))
    sink = Recorder()
    restarted = tailer(log_file, checkpoints, sink)
    with caplog.at_level(logging.WARNING, logger="kubetrail.collect.tailer"):
        restarted.poll_once()
        restarted.poll_once()
    assert sink.lines[0] == lines("b", 1)[0] and sink.lines[-1] == lines("d", 1)[0]
    assert restarted.stats.lost_rotations == 1 and restarted.stats.failures == 0
    assert any(broken.name in record.getMessage() for record in caplog.records)


def padded(prefix: str, count: int) -> list[bytes]:
    return [f'{{"n":"{prefix}{number}","pad":"{"x" * 100}"}}'.encode() for number in range(count)]


class HoleWriter:
    """A writer without O_APPEND (lumberjack's own after it created the file): after a copy-truncate it goes on
    at its old offset, so each generation starts with a hole of NULs as long as everything before it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)

    def write(self, items: list[bytes]) -> None:
        os.write(self.fd, b"".join(item + b"\n" for item in items))

    def copytruncate(self) -> None:
        """logrotate `copytruncate`, `compress`, `delaycompress`."""
        for index in range(9, 1, -1):
            older = self.path.with_name(f"audit.log.{index}.gz")
            if older.exists():
                older.rename(self.path.with_name(f"audit.log.{index + 1}.gz"))
        if self.path.with_name("audit.log.1").exists():
            self.path.with_name("audit.log.1").rename(self.path.with_name("audit.log.2"))
            compress(self.path.with_name("audit.log.2"))
        shutil.copyfile(self.path, self.path.with_name("audit.log.1"))
        os.truncate(self.path, 0)


def test_compressed_copies_of_generations_starting_with_a_hole_are_told_apart(
    log_file: Path, checkpoints: CheckpointStore
) -> None:
    writer = HoleWriter(log_file)
    sink = Recorder()
    tail = tailer(log_file, checkpoints, sink)
    writer.write(padded("a", 50))
    tail.poll_once()
    for generation in ("b", "c", "d"):
        writer.copytruncate()
        writer.write(padded(generation, 50))
        tail.poll_once()
    assert sink.lines == [*padded("a", 50), *padded("b", 50), *padded("c", 50), *padded("d", 50)]
    assert tail.stats.backups_read == 0
    tail.stop()

    writer.write(padded("d-after", 5))
    for generation in ("e", "f", "g"):
        writer.copytruncate()
        writer.write(padded(generation, 50))
    os.close(writer.fd)
    assert log_file.with_name("audit.log.2.gz").read_bytes()[:2] == b"\x1f\x8b"
    restarted = Recorder()
    again = tailer(log_file, checkpoints, restarted)
    again.poll_once()
    again.poll_once()
    assert restarted.lines == [*padded("d-after", 5), *padded("e", 50), *padded("f", 50), *padded("g", 50)]
    assert again.stats.lost_rotations == 0
