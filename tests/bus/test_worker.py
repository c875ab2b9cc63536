"""Receivers' publisher and workers against a real JetStream node: stored once, acknowledged only when durable."""

from __future__ import annotations

import asyncio
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
