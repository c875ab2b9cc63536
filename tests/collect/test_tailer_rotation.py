"""Rotation under load: a writer rotates by rename (plain or gzip'd after) and by copy-truncate while the tailer
follows; then a restart.

Every line must arrive exactly once and in order, including lines written in two halves.
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
import threading
import time
from pathlib import Path

from kubetrail.collect.checkpoint import CheckpointStore
from kubetrail.collect.tailer import TailBatch, Tailer, TailOptions

LINES = 6000
ROTATE_EVERY = 150
ROTATION_PAUSE = 0.05


class Writer:
    """Writes numbered lines like an apiserver log backend and rotates the file itself (so no write is lost)."""

    def __init__(self, path: Path, seed: int, styles: tuple[str, ...]) -> None:
        self.path = path
        self.random = random.Random(seed)
        self.styles = styles
        self.rotations = {style: 0 for style in styles}
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.backups = 0

    def line(self, number: int) -> bytes:
        return f'{{"n":{number},"pad":"{"x" * self.random.randrange(0, 300)}"}}\n'.encode()

    def rotate(self) -> None:
        style = self.random.choice(self.styles)
        self.rotations[style] += 1
        self.backups += 1
        if style in ("rename", "compress"):
            os.close(self.fd)
            backup = self.path.with_name(f"audit-2026-03-19T10-00-{self.backups:05d}.log")
            self.path.rename(backup)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            if style == "compress":  # lumberjack's --audit-log-compress: `<backup>.gz` written, then the backup deleted
                with open(backup, "rb") as source, gzip.open(backup.with_name(backup.name + ".gz"), "wb") as target:
                    shutil.copyfileobj(source, target)
                backup.unlink()
        else:
            for index in range(9, 0, -1):
                older = self.path.with_name(f"audit.log.{index}")
                if older.exists():
                    older.rename(self.path.with_name(f"audit.log.{index + 1}"))
            shutil.copyfile(self.path, self.path.with_name("audit.log.1"))
            os.ftruncate(self.fd, 0)
        # real logs rotate minutes apart; the pause keeps backups' modification times a kernel clock tick apart, so
        # a tailer starved on a loaded machine reads generations it missed in the right order (its known limits)
        time.sleep(ROTATION_PAUSE)

    def run(self, count: int, start: int = 0) -> None:
        for number in range(start, start + count):
            data = self.line(number)
            if self.random.random() < 0.1:
                half = len(data) // 2
                os.write(self.fd, data[:half])
                time.sleep(0.0005)
                os.write(self.fd, data[half:])
            else:
                os.write(self.fd, data)
            if number % ROTATE_EVERY == ROTATE_EVERY - 1:
                self.rotate()
            if number % 25 == 0:
                time.sleep(0.002)

    def close(self) -> None:
        os.close(self.fd)


class Numbers:
    """A sink that keeps the line numbers it received (thread-safe)."""

    def __init__(self) -> None:
        self.numbers: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, batch: TailBatch) -> None:
        import json

        with self.lock:
            self.numbers.extend(json.loads(line)["n"] for line in batch.lines)


def follow(tail: Tailer, sink: Numbers, writer_done: threading.Event, total: int) -> Tailer:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        tail.poll_once()
        if writer_done.is_set() and len(sink.numbers) >= total:
            break
        time.sleep(0.005)
    tail.poll_once()
    return tail


def run_load(tmp_path: Path, styles: tuple[str, ...], seed: int) -> tuple[Numbers, Tailer, Writer]:
    path = tmp_path / "audit.log"
    writer = Writer(path, seed, styles)
    done = threading.Event()
    sink = Numbers()

    def write() -> None:
        writer.run(LINES)
        done.set()

    tail = Tailer(path, sink, CheckpointStore(tmp_path / "cp"), TailOptions(poll_interval=0.005, rotate_grace=0.02))
    tail.poll_once()  # the first look, before any line: backups already there at a first look are not read
    thread = threading.Thread(target=write)
    thread.start()
    follow(tail, sink, done, LINES)
    thread.join()
    return sink, tail, writer


def test_rename_rotation_under_load_loses_and_repeats_nothing(tmp_path: Path) -> None:
    sink, tail, writer = run_load(tmp_path, ("rename",), seed=1)
    writer.close()
    assert sink.numbers == list(range(LINES))
    assert writer.rotations["rename"] == LINES // ROTATE_EVERY
    assert tail.stats.renames + tail.stats.backups_read == writer.rotations["rename"]


def test_copy_truncate_rotation_under_load_loses_and_repeats_nothing(tmp_path: Path) -> None:
    sink, tail, writer = run_load(tmp_path, ("copytruncate",), seed=2)
    writer.close()
    assert sink.numbers == list(range(LINES))
    assert tail.stats.truncations == writer.rotations["copytruncate"]


def test_mixed_rotation_under_load_then_a_restart_in_the_middle(tmp_path: Path) -> None:
    sink, _, writer = run_load(tmp_path, ("rename", "copytruncate"), seed=3)
    assert sink.numbers == list(range(LINES))
    writer.run(500, start=LINES)
    writer.rotate()
    writer.run(100, start=LINES + 500)
    writer.close()
    restarted = Numbers()
    tail = Tailer(tmp_path / "audit.log", restarted, CheckpointStore(tmp_path / "cp"), TailOptions(rotate_grace=0))
    for _ in range(5):
        tail.poll_once()
    assert restarted.numbers == list(range(LINES, LINES + 600))


def test_compressing_rename_rotation_under_load_then_a_restart_after_more_rotations(tmp_path: Path) -> None:
    sink, tail, writer = run_load(tmp_path, ("compress",), seed=4)
    assert sink.numbers == list(range(LINES))
    assert tail.stats.renames + tail.stats.backups_read == writer.rotations["compress"]
    writer.run(500, start=LINES)
    writer.rotate()
    writer.run(100, start=LINES + 500)
    writer.close()
    assert len(list(tmp_path.glob("audit-*.log.gz"))) == writer.rotations["compress"]
    restarted = Numbers()
    tail = Tailer(tmp_path / "audit.log", restarted, CheckpointStore(tmp_path / "cp"), TailOptions(rotate_grace=0))
    for _ in range(5):
        tail.poll_once()
    assert restarted.numbers == list(range(LINES, LINES + 600))
    assert tail.stats.lost_rotations == 0
