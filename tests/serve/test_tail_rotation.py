"""A real `kubetrail serve --tail` following a log that rotates by rename and copy-truncate under a write load,
killed with -9 half-way and restarted: every line is stored exactly once; and the same across rotations that
gzip the backups (`--audit-log-compress`) while serve is down."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import signal
import threading
import time
from pathlib import Path

from kubetrail.store import Store
from tests.serve.helpers import audit_event, start_serve

LINES = 3000
ROTATE_EVERY = 120


class LogWriter:
    """An apiserver-like log backend: one JSON event per line, rotating itself by rename or copy-truncate (or,
    with `compress`, by rename and gzip)."""

    def __init__(self, path: Path, seed: int, *, compress: bool = False) -> None:
        self.path = path
        self.random = random.Random(seed)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.generation = 0
        self.compress = compress

    def rotate(self) -> None:
        self.generation += 1
        if self.compress:  # the apiserver's lumberjack with --audit-log-compress: rename, gzip, delete the plain file
            os.close(self.fd)
            backup = self.path.with_name(f"audit-2026-03-19T10-00-{self.generation:05d}.log")
            self.path.rename(backup)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with open(backup, "rb") as source, gzip.open(backup.with_name(backup.name + ".gz"), "wb") as target:
                shutil.copyfileobj(source, target)
            backup.unlink()
        elif self.random.random() < 0.5:
            os.close(self.fd)
            self.path.rename(self.path.with_name(f"audit-2026-03-19T10-00-{self.generation:05d}.log"))
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        else:
            for index in range(40, 0, -1):
                older = self.path.with_name(f"audit.log.{index}")
                if older.exists():
                    older.rename(self.path.with_name(f"audit.log.{index + 1}"))
            shutil.copyfile(self.path, self.path.with_name("audit.log.1"))
            os.ftruncate(self.fd, 0)

    def write(self, start: int, count: int) -> None:
        for number in range(start, start + count):
            line = json.dumps(audit_event(number, prefix="tail")).encode() + b"\n"
            if self.random.random() < 0.05:
                os.write(self.fd, line[:40])
                time.sleep(0.001)
                os.write(self.fd, line[40:])
            else:
                os.write(self.fd, line)
            if number % ROTATE_EVERY == ROTATE_EVERY - 1:
                self.rotate()
            if number % 20 == 0:
                time.sleep(0.003)


def stored_count(store: Path) -> int:
    opened = Store.open(store, read_only=True)
    try:
        row = opened.query_connection().execute("select count(*) from events").fetchone()
        return int(row[0]) if row else 0
    finally:
        opened.close()


def test_rotation_while_tailing_with_a_crash_loses_and_repeats_nothing(tmp_path: Path) -> None:
    log = tmp_path / "log" / "audit.log"
    log.parent.mkdir()
    store = tmp_path / "store"
    arguments = ("--store", str(store), "--listen", "127.0.0.1:0", "--tail", str(log), "--tail-cluster", "files")
    writer = LogWriter(log, seed=11)
    first = start_serve(*arguments, "--log-level", "warning")
    half = threading.Thread(target=writer.write, args=(0, LINES // 2))
    half.start()
    half.join()
    time.sleep(0.5)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=30)
    writer.write(LINES // 2, LINES // 2)
    os.close(writer.fd)

    second = start_serve(*arguments, "--log-level", "warning")
    deadline = time.monotonic() + 90
    while stored_count(store) < LINES and time.monotonic() < deadline:
        time.sleep(0.5)
    assert second.stop() == 0, "".join(second.output)

    opened = Store.open(store, read_only=True)
    try:
        connection = opened.query_connection()
        rows = connection.execute("select cluster, audit_id, count(*) from events group by all").fetchall()
    finally:
        opened.close()
    assert {cluster for cluster, _, _ in rows} == {"files"}
    assert all(count == 1 for _, _, count in rows)
    expected = {audit_event(number, prefix="tail")["auditID"] for number in range(LINES)}
    assert {audit_id for _, audit_id, _ in rows} == expected
    assert writer.generation == LINES // ROTATE_EVERY


def test_generations_rotated_and_compressed_while_serve_is_down_are_stored_once(tmp_path: Path) -> None:
    log = tmp_path / "log" / "audit.log"
    log.parent.mkdir()
    store = tmp_path / "store"
    arguments = ("--store", str(store), "--listen", "127.0.0.1:0", "--tail", str(log), "--tail-cluster", "files")
    writer = LogWriter(log, seed=12, compress=True)
    first = start_serve(*arguments, "--log-level", "warning")
    writer.write(0, 300)  # two rotations, then half a generation the checkpoint points into
    deadline = time.monotonic() + 60
    while stored_count(store) < 300 and time.monotonic() < deadline:
        time.sleep(0.2)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=30)
    writer.write(300, 500)  # the checkpointed generation and three more rotated and compressed while down
    os.close(writer.fd)
    assert [path.name for path in log.parent.iterdir() if path.suffix != ".gz"] == ["audit.log"]

    second = start_serve(*arguments, "--log-level", "warning")
    deadline = time.monotonic() + 60
    while stored_count(store) < 800 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert second.stop() == 0, "".join(second.output)

    opened = Store.open(store, read_only=True)
    try:
        rows = opened.query_connection().execute("select audit_id, count(*) from events group by all").fetchall()
    finally:
        opened.close()
    assert all(count == 1 for _, count in rows)
    expected = {audit_event(number, prefix="tail")["auditID"] for number in range(800)}
    assert {audit_id for audit_id, _ in rows} == expected
    assert "LOST" not in "".join(second.output)
