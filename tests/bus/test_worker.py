"""Receivers' publisher and workers against a real JetStream node: stored once, acknowledged only when durable."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from kubetrail.bus import parse_bus_url
from kubetrail.bus.config import batch_message_id
from kubetrail.bus.lake import open_lake, worker_dirs, worker_store_dir
from kubetrail.bus.publisher import BusPublisher
from kubetrail.bus.worker import Worker
from kubetrail.emit.generator import GeneratorConfig, generate
from kubetrail.model import Event
from kubetrail.store import Store
from tests.bus.natsserver import NatsNode, nats_node

__all__ = ["nats_node"]


def sample(count_seconds: float = 20.0) -> list[Event]:
    return list(generate(GeneratorConfig(seed=5, nodes=2, rate=10.0, duration=count_seconds)))


def batches(events: list[Event], size: int) -> list[list[Event]]:
    return [events[start : start + size] for start in range(0, len(events), size)]


async def _publish_all(url: str, cluster: str, groups: list[list[Event]]) -> list[bool]:
    publisher = BusPublisher(parse_bus_url(url))
    await publisher.connect()
    try:
        return [(await publisher.publish(cluster, group)).duplicates == len(group) for group in groups]
    finally:
        await publisher.close()


async def _work_until(worker: Worker, expected: int, timeout: float = 30.0) -> None:
    task = asyncio.create_task(worker.run())
    deadline = asyncio.get_running_loop().time() + timeout
    while worker.stats.events + worker.stats.duplicates < expected:
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    worker.stop()
    await task
    await worker.close()


def test_a_republished_batch_is_stored_once_and_workers_fill_the_lake(nats_node: NatsNode, tmp_path: Path) -> None:
    events = sample()
    groups = batches(events, 100)
    duplicates = asyncio.run(_publish_all(nats_node.url, "prod", [*groups, groups[0]]))
    assert duplicates == [False] * len(groups) + [True]  # JetStream's message id drops the retried batch

    lake = tmp_path / "lake"
    worker = Worker(parse_bus_url(nats_node.url), lake, "w1")
    asyncio.run(_work_until(worker, len(events)))
    assert worker.stats.events == len(events)
    assert [path.name for path in worker_dirs(lake)] == ["worker=w1"]
    conn = open_lake(lake)
    stored = conn.execute("select audit_id, stage from events where cluster = 'prod'").fetchall()
    assert sorted(stored) == sorted((event.auditID, str(event.stage)) for event in events)


def test_copies_stored_by_two_workers_appear_once_in_the_lake(tmp_path: Path) -> None:
    # a worker that died after storing but before acknowledging: JetStream redelivers to another worker
    events = sample(10.0)
    lake = tmp_path / "lake"
    for name in ("a", "b"):
        with Store.open(worker_store_dir(lake, name)) as store:
            store.append("prod", events)
    conn = open_lake(lake)
    assert conn.execute("select count(*) from events").fetchone() == (len(events),)
    copies = conn.execute("select count(*) from (select * from sealed union all select * from tail)").fetchone()
    assert copies == (2 * len(events),)
    stored = conn.execute("select audit_id, stage from events").fetchall()
    assert sorted(stored) == sorted((event.auditID, str(event.stage)) for event in events)


def test_message_ids_depend_on_every_event_of_the_batch() -> None:
    keys = [("a", "ResponseComplete"), ("b", "ResponseComplete")]
    assert batch_message_id("prod", keys) == batch_message_id("prod", list(keys))
    assert batch_message_id("prod", keys) != batch_message_id("dev", keys)
    assert batch_message_id("prod", keys) != batch_message_id("prod", keys[:1])


def test_unreachable_bus_is_a_clear_error() -> None:
    from kubetrail.bus import BusError

    publisher = BusPublisher(parse_bus_url("nats://127.0.0.1:9"))
    with pytest.raises(BusError, match="cannot reach NATS"):
        asyncio.run(publisher.connect())


def test_batches_of_two_clusters_fetched_together_are_each_stored_under_their_cluster(
    nats_node: NatsNode, tmp_path: Path
) -> None:
    # the same events sent by two clusters are two sets of events: (cluster, auditID, stage) tells them apart
    events = sample(10.0)
    groups = batches(events, 40)

    async def publish_interleaved() -> None:
        publisher = BusPublisher(parse_bus_url(nats_node.url))
        await publisher.connect()
        try:
            for group in groups:
                for cluster in ("prod", "dev"):
                    await publisher.publish(cluster, group)
        finally:
            await publisher.close()

    asyncio.run(publish_interleaved())  # all published before the worker starts: its fetches mix the clusters
    lake = tmp_path / "lake"
    worker = Worker(parse_bus_url(nats_node.url), lake, "w1")
    asyncio.run(_work_until(worker, 2 * len(events)))
    assert worker.stats.clusters == {"prod": len(events), "dev": len(events)}
    conn = open_lake(lake)
    expected = sorted((event.auditID, str(event.stage)) for event in events)
    for cluster in ("prod", "dev"):
        stored = conn.execute("select audit_id, stage from events where cluster = ?", [cluster]).fetchall()
        assert sorted(stored) == expected


async def _stream_messages(url: str) -> int:
    import nats

    connection = await nats.connect(url)
    try:
        info = await connection.jetstream().stream_info(parse_bus_url(url).stream)
        return int(info.state.messages or 0)
    finally:
        await connection.close()


def test_batches_the_worker_could_not_store_stay_in_the_stream_for_the_next_worker(
    nats_node: NatsNode, tmp_path: Path
) -> None:
    events = sample(10.0)
    asyncio.run(_publish_all(nats_node.url, "prod", batches(events, 50)))
    published = asyncio.run(_stream_messages(nats_node.url))
    lake = tmp_path / "lake"

    async def broken_worker() -> Worker:
        # a short ack wait: a batch delivered to the broken worker just as it stopped comes back soon
        config = dataclasses.replace(parse_bus_url(nats_node.url), ack_wait_seconds=3.0)
        worker = Worker(config, lake, "broken", store_retry_seconds=0.2)
        worker.store.close()  # every append now fails as a full or failed disk would: nothing may be acknowledged
        task = asyncio.create_task(worker.run())
        deadline = asyncio.get_running_loop().time() + 60
        while worker.stats.unstored < 2 * published and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)  # every batch handed back, and most of them delivered again and refused again
        worker.stop()
        await task
        await worker.close()
        return worker

    broken = asyncio.run(broken_worker())
    assert broken.stats.unstored >= 2 * published
    assert broken.stats.events == 0
    assert asyncio.run(_stream_messages(nats_node.url)) == published  # a work queue keeps what was not acked

    worker = Worker(parse_bus_url(nats_node.url), lake, "w2")
    asyncio.run(_work_until(worker, len(events)))
    assert worker.stats.events == len(events)
    assert worker.stats.redelivered > 0
    stored = open_lake(lake).execute("select audit_id, stage from events").fetchall()
    assert sorted(stored) == sorted((event.auditID, str(event.stage)) for event in events)
