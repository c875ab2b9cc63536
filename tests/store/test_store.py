"""The Store facade end to end on real directories: durability, replay, dedup, crash by SIGKILL, the tail view."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from kubetrail.model import Stage, decode_event
from kubetrail.store import NotDurableError, Store, StoreLockedError, StoreOptions
from kubetrail.store.wal import FileOps
from tests.conftest import PROJECT_ROOT
from tests.store.factory import make_event, make_events


def _ids(store: Store) -> list[tuple[str, str]]:
    rows = store.query_connection().sql("SELECT audit_id, stage FROM events ORDER BY 1, 2").fetchall()
    return [(row[0], row[1]) for row in rows]


def test_an_acknowledged_event_is_queryable_before_sealing(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s") as store:
        result = store.append("prod", make_events(0, 3))
        assert (result.accepted, result.duplicates) == (3, 0)
        connection = store.query_connection()
        assert connection.sql("SELECT count(*) FROM sealed").fetchall() == [(0,)]
        rows = connection.sql("SELECT cluster, namespace, verb, response_code, user FROM events").fetchall()
        assert rows == [("prod", "default", "get", 200, "jane")] * 3


def test_every_stage_of_a_request_is_kept_and_retries_are_not(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s") as store:
        received = make_event(1, stage=Stage.REQUEST_RECEIVED)
        complete = make_event(1, stage=Stage.RESPONSE_COMPLETE)
        assert store.append("prod", [received, complete]).accepted == 2
        retry = store.append("prod", [received, complete, make_event(2)])
        assert (retry.accepted, retry.duplicates) == (1, 2)
        assert len(_ids(store)) == 3


def test_invalid_utf8_in_a_raw_body_is_replaced_not_fatal(tmp_path: Path) -> None:
    raw = (
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"bad-utf8","stage":"ResponseComplete",'
        b'"requestURI":"/api/v1/namespaces/a/configmaps","verb":"create","user":{"username":"u"},'
        b'"requestObject":{"data":"\xff\xfe"},"requestReceivedTimestamp":"2026-03-19T10:00:00.000000Z"}'
    )
    event = decode_event(raw)
    with Store.open(tmp_path / "s") as store:
        assert store.append("prod", [event], [raw]).accepted == 1
        store.seal()
        (stored,) = store.query_connection().sql("SELECT event FROM events").fetchall()[0]
    assert "\ufffd\ufffd" in stored


def test_the_same_audit_id_in_two_clusters_is_two_events(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s") as store:
        store.append("prod", [make_event(1)])
        assert store.append("staging", [make_event(1)]).accepted == 1


def test_dedup_spans_sealed_data_and_reopening(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s") as store:
        store.append("prod", make_events(0, 50))
        store.seal()
        assert store.append("prod", make_events(25, 50)).accepted == 25
    with Store.open(tmp_path / "s") as store:
        assert store.append("prod", make_events(0, 100)).accepted == 25
        assert len(_ids(store)) == 100


def test_unsealed_events_are_replayed_once_after_reopening(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s", StoreOptions(background_seal=False))
    store.append("prod", make_events(0, 10))
    store.append("prod", make_events(10, 10))
    store.close(seal=False)
    assert len(list((tmp_path / "s" / "wal").iterdir())) == 1
    reopened = Store.open(tmp_path / "s", StoreOptions(background_seal=False))
    assert reopened.append("prod", make_events(0, 20)).duplicates == 20
    assert len(_ids(reopened)) == 20
    reopened.close()
    with Store.open(tmp_path / "s", read_only=True) as reader:
        assert len(_ids(reader)) == 20
        assert reader.stats().tail_rows == 0


def test_a_second_writer_is_refused_but_a_reader_is_not(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s") as store:
        store.append("prod", make_events(0, 4))
        with pytest.raises(StoreLockedError):
            Store.open(tmp_path / "s")
        with Store.open(tmp_path / "s", read_only=True) as reader:
            assert len(_ids(reader)) == 4


def test_segments_rotate_by_size_and_seal_in_the_background(tmp_path: Path) -> None:
    options = StoreOptions(segment_bytes=20_000, seal_age_seconds=0.05)
    with Store.open(tmp_path / "s", options) as store:
        for start in range(0, 400, 40):
            store.append("prod", make_events(start, 40))
        store.seal()
        stats = store.stats()
        assert stats.sealed_rows == 400
        assert stats.tail_rows == 0
        assert stats.sealed_files > 1
        assert len(_ids(store)) == 400


def test_an_idle_segment_is_sealed_when_it_gets_old(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s", StoreOptions(seal_age_seconds=0.1)) as store:
        store.append("prod", make_events(0, 7))
        deadline = time.monotonic() + 30
        while store.stats().sealed_rows < 7 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.stats().sealed_rows == 7
        assert len(_ids(store)) == 7


def test_concurrent_writers_and_async_appends_lose_nothing(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s", StoreOptions(segment_bytes=200_000)) as store:

        def writer(thread: int) -> None:
            for batch in range(10):
                store.append("prod", make_events(thread * 10_000 + batch * 20, 20))

        threads = [threading.Thread(target=writer, args=(index,)) for index in range(4)]
        for thread in threads:
            thread.start()

        async def async_writers() -> list[int]:
            results = await asyncio.gather(
                *(store.append_async("prod", make_events(90_000 + index * 20, 20)) for index in range(10))
            )
            return [result.accepted for result in results]

        assert asyncio.run(async_writers()) == [20] * 10
        for thread in threads:
            thread.join()
        ids = _ids(store)
        assert len(ids) == len(set(ids)) == 4 * 10 * 20 + 200


class FullDisk(FileOps):
    def __init__(self) -> None:
        self.full = False

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(fd, data)


def test_disk_full_refuses_the_batch_keeps_everything_acknowledged_and_recovers(tmp_path: Path) -> None:
    ops = FullDisk()
    store = Store.open(tmp_path / "s", StoreOptions(file_ops=ops, background_seal=False))
    store.append("prod", make_events(0, 10))
    ops.full = True
    with pytest.raises(NotDurableError, match="No space left"):
        store.append("prod", make_events(10, 10))
    assert len(_ids(store)) == 10
    ops.full = False
    assert store.append("prod", make_events(10, 10)).accepted == 10  # the sender's retry is stored
    store.close(seal=False)
    with Store.open(tmp_path / "s") as reopened:
        assert len(_ids(reopened)) == 20


def test_an_fsync_failure_is_not_acknowledged_and_the_retry_is_stored_once(tmp_path: Path) -> None:
    class FailingFsync(FileOps):
        fail = False

        def fsync(self, fd: int) -> None:
            if self.fail:
                raise OSError(errno.EIO, "Input/output error")
            super().fsync(fd)

    ops = FailingFsync()
    store = Store.open(tmp_path / "s", StoreOptions(file_ops=ops, background_seal=False))
    store.append("prod", make_events(0, 5))
    ops.fail = True
    with pytest.raises(NotDurableError):
        store.append("prod", make_events(5, 5))
    ops.fail = False
    assert store.append("prod", make_events(5, 5)).accepted == 5
    assert len(_ids(store)) == 10
    store.close(seal=False)
    with Store.open(tmp_path / "s") as reopened:  # the failed segment replays too: dedup keeps one copy
        ids = _ids(reopened)
        assert len(ids) == len(set(ids)) == 10


def test_async_append_reports_an_fsync_failure(tmp_path: Path) -> None:
    class FailingFsync(FileOps):
        fail = False

        def fsync(self, fd: int) -> None:
            if self.fail:
                raise OSError(errno.EIO, "Input/output error")
            super().fsync(fd)

    ops = FailingFsync()
    with Store.open(tmp_path / "s", StoreOptions(file_ops=ops)) as store:
        assert asyncio.run(store.append_async("prod", make_events(0, 3))).accepted == 3
        ops.fail = True
        with pytest.raises(NotDurableError):
            asyncio.run(store.append_async("prod", make_events(3, 3)))
        ops.fail = False
        assert asyncio.run(store.append_async("prod", make_events(3, 3))).accepted == 3
        assert len(_ids(store)) == 6


def test_closed_store_refuses_appends(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s")
    store.close()
    with pytest.raises(NotDurableError):
        store.append("prod", make_events(0, 1))


_CHILD = textwrap.dedent(
    """
    import sys
    from kubetrail.store import Store, StoreOptions
    from tests.store.factory import make_events

    store = Store.open(sys.argv[1], StoreOptions(segment_bytes=60_000))
    batch = 0
    while True:
        store.append("prod", make_events(batch * 25, 25))
        print(batch, flush=True)
        batch += 1
    """
)


@pytest.mark.parametrize("acks", [1, 30])
def test_sigkill_after_acknowledgements_loses_none_of_them(tmp_path: Path, acks: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path / "s")], stdout=subprocess.PIPE, env=env, cwd=PROJECT_ROOT
    )
    assert child.stdout is not None
    acknowledged = -1
    for line in child.stdout:
        acknowledged = int(line)
        if acknowledged + 1 >= acks:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    with Store.open(tmp_path / "s") as store:
        ids = _ids(store)
    assert len(ids) == len(set(ids))
    expected = {(event.auditID, "ResponseComplete") for event in make_events(0, (acknowledged + 1) * 25)}
    assert expected <= set(ids)


def test_a_damaged_wal_segment_is_kept_aside_not_silently_dropped(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s")
    store.append("prod", make_events(0, 5))
    store.append("prod", make_events(5, 5))
    store.close(seal=False)
    (segment,) = list((tmp_path / "s" / "wal").glob("*.wal"))
    data = bytearray(segment.read_bytes())
    data[-5] ^= 0xFF  # inside the second record
    segment.write_bytes(bytes(data))
    with Store.open(tmp_path / "s") as reopened:
        assert len(_ids(reopened)) == 5
    assert (segment.parent / (segment.name + ".damaged")).read_bytes() == bytes(data)


def test_a_segment_deleted_behind_the_stores_back_does_not_stop_it(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s") as store:
        store.append("prod", make_events(0, 5, day="2026-03-18"))
        store.append("prod", make_events(5, 5, day="2026-03-19"))
    next((tmp_path / "s" / "data").rglob("date=2026-03-18/*/*.parquet")).unlink()
    with Store.open(tmp_path / "s") as store:
        assert store.append("prod", make_events(0, 10, day="2026-03-18")[:5]).accepted == 5
        assert len(_ids(store)) == 10


def test_a_reopened_store_never_reuses_a_sealed_wal_segment_id(tmp_path: Path) -> None:
    from kubetrail.emit.generator import GeneratorConfig, generate

    events = list(generate(GeneratorConfig(seed=2, nodes=1, rate=5.0, duration=10.0)))
    half = len(events) // 2
    with Store.open(tmp_path / "s") as store:
        store.append("prod", events[:half])
    # closing sealed every WAL segment; the next writer's events must stay visible to read-only openers
    writer = Store.open(tmp_path / "s", StoreOptions(background_seal=False))
    try:
        writer.append("prod", events[half:])
        with Store.open(tmp_path / "s", read_only=True) as reader:
            count = reader.query_connection().execute("select count(*) from events").fetchone()
        assert count == (len(events),)
    finally:
        writer.close()
