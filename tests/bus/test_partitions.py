"""Partitions of the events stream: by identity, spread over the live workers, handed over with their state."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from kubetrail.bus import parse_bus_url
from kubetrail.bus.config import CLUSTER_HEADER, partition_of
from kubetrail.bus.lake import open_lake
from kubetrail.bus.partitions import assigned, owner_of
from kubetrail.bus.publisher import BusPublisher
from kubetrail.bus.worker import Worker
from kubetrail.detect import RuleSource, load_ruleset
from kubetrail.model import Event, decode_event, encode_event
from tests.bus.natsserver import NatsNode, nats_node
from tests.detect.helpers import event_dict

__all__ = ["nats_node"]

THRESHOLD_RULE = """
- rule: Many Deletes By One User
  desc: one identity deleted ten objects within ten minutes
  condition: ka.verb = delete
  output: "%ka.user.name deleted %ka.target.resource"
  priority: WARNING
  source: k8s_audit
  threshold: {count: 10, window: 10m, group_by: [ka.user.name]}
"""


def test_every_partition_has_exactly_one_owner() -> None:
    members = ["w1", "w2", "w3"]
    shares = [assigned(member, members, 16) for member in members]
    assert set().union(*shares) == set(range(16))
    assert sum(len(share) for share in shares) == 16
    assert all(shares)  # 16 partitions over 3 members: nobody is left out (for these names)


def test_a_member_joining_takes_partitions_only_from_nobody_else() -> None:
    before = {partition: owner_of(partition, ["w1", "w2"]) for partition in range(64)}
    after = {partition: owner_of(partition, ["w1", "w2", "w3"]) for partition in range(64)}
    moved = [partition for partition in range(64) if before[partition] != after[partition]]
    assert moved and all(after[partition] == "w3" for partition in moved)  # rendezvous hashing: minimal movement


def test_one_identity_is_one_partition_and_unauthenticated_requests_share_one() -> None:
    assert partition_of("jane@example.com", 8) == partition_of("jane@example.com", 8)
    assert partition_of("", 8) == partition_of("system:anonymous", 8)
    assert len({partition_of(f"user-{index}", 8) for index in range(200)}) == 8


def _deletes(user: str, count: int, start_second: int) -> list[Event]:
    events = []
    for index in range(count):
        stamp = f"2026-05-01T10:{(start_second + index) // 60:02d}:{(start_second + index) % 60:02d}.000000Z"
        data = event_dict(
            auditID=str(uuid.uuid4()),
            verb="delete",
            user={"username": user, "groups": ["system:authenticated"]},
            objectRef={"resource": "configmaps", "namespace": "default", "name": f"cm-{start_second + index}"},
            requestReceivedTimestamp=stamp,
            stageTimestamp=stamp,
        )
        events.append(decode_event(json.dumps(data).encode()))
    return events


async def _publish(url: str, events: list[Event]) -> None:
    publisher = BusPublisher(parse_bus_url(url))
    await publisher.connect()
    try:
        for start in range(0, len(events), 3):
            await publisher.publish("prod", events[start : start + 3])
    finally:
        await publisher.close()


async def _run_until(worker: Worker, stored: int, timeout: float = 30.0) -> None:
    """Run the worker until it stored `stored` events (and committed them), then stop it cleanly."""
    task = asyncio.create_task(worker.run())
    deadline = asyncio.get_running_loop().time() + timeout
    while worker.stats.events < stored and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.5)  # past one commit interval
    worker.stop()
    await task
    await worker.close()


def test_a_stateful_count_continues_on_the_worker_that_takes_the_partition_over(
    nats_node: NatsNode, tmp_path: Path
) -> None:
    rules = load_ruleset([RuleSource("deletes.yaml", THRESHOLD_RULE)])
    lake = tmp_path / "lake"
    first = _deletes("mallory", 6, 0)
    asyncio.run(_publish(nats_node.url, first))
    one = Worker(parse_bus_url(nats_node.url), lake, "one", rules=rules)
    asyncio.run(_run_until(one, len(first)))
    assert one.stats.events == 6 and one.stats.alerts == 0  # 6 of 10: no alert yet

    second = _deletes("mallory", 6, 6)
    asyncio.run(_publish(nats_node.url, second))
    two = Worker(parse_bus_url(nats_node.url), lake, "two", rules=rules)
    asyncio.run(_run_until(two, len(second)))
    # the partition's state came with it: the 10th delete (4th here) completes the count
    assert two.stats.events == 6 and two.stats.alerts == 1
    assert open_lake(lake).execute("select count(*) from events").fetchone() == (12,)


def test_two_workers_split_the_partitions_and_one_users_count_stays_whole(nats_node: NatsNode, tmp_path: Path) -> None:
    rules = load_ruleset([RuleSource("deletes.yaml", THRESHOLD_RULE)])
    lake = tmp_path / "lake"
    users = [f"user-{index}" for index in range(8)]
    events = [event for index, user in enumerate(users) for event in _deletes(user, 10, index * 10)]

    async def scenario() -> tuple[Worker, Worker]:
        workers = (
            Worker(parse_bus_url(nats_node.url), lake, "a", rules=rules),
            Worker(parse_bus_url(nats_node.url), lake, "b", rules=rules),
        )
        tasks = [asyncio.create_task(worker.run()) for worker in workers]
        deadline = asyncio.get_running_loop().time() + 20
        while not all(worker.stats.partitions for worker in workers):  # both joined and took their share
            assert asyncio.get_running_loop().time() < deadline, "the workers did not share the partitions"
            await asyncio.sleep(0.1)
        await _publish(nats_node.url, events)
        while sum(worker.stats.events for worker in workers) < len(events):
            assert asyncio.get_running_loop().time() < deadline + 20
            await asyncio.sleep(0.05)
        for worker in workers:
            worker.stop()
        await asyncio.gather(*tasks)
        for worker in workers:
            await worker.close()
        return workers

    first, second = asyncio.run(scenario())
    assert first.stats.events and second.stats.events  # both worked
    # each user's 10 deletes were counted on one worker: one alert per user, none lost to a split count
    assert first.stats.alerts + second.stats.alerts == len(users)


def test_a_damaged_partition_checkpoint_starts_empty_instead_of_stopping_the_worker(
    nats_node: NatsNode, tmp_path: Path
) -> None:
    from kubetrail.bus.consumer import checkpoint_path

    rules = load_ruleset([RuleSource("deletes.yaml", THRESHOLD_RULE)])
    lake = tmp_path / "lake"
    for partition in range(8):
        path = checkpoint_path(lake, partition, 0)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{not json")
    events = _deletes("mallory", 10, 0)
    asyncio.run(_publish(nats_node.url, events))
    worker = Worker(parse_bus_url(nats_node.url), lake, "one", rules=rules)
    asyncio.run(_run_until(worker, len(events)))
    assert worker.stats.events == 10 and worker.stats.alerts == 1  # counted from an empty state
    # the commit replaced the damaged checkpoint of mallory's partition with a readable one
    written = checkpoint_path(lake, partition_of("mallory", 8), 0).read_text()
    assert json.loads(written)


def test_max_keys_bounds_each_partitions_stateful_rules(nats_node: NatsNode, tmp_path: Path) -> None:
    from kubetrail.detect.stateful import StatefulDetector

    rules = load_ruleset([RuleSource("deletes.yaml", THRESHOLD_RULE)])
    worker = Worker(parse_bus_url(nats_node.url), tmp_path / "lake", "one", rules=rules, max_keys=3)

    async def scenario() -> list[int]:
        task = asyncio.create_task(worker.run())
        deadline = asyncio.get_running_loop().time() + 20
        while len(worker.owned) < 8:
            assert asyncio.get_running_loop().time() < deadline, "the worker did not take every partition"
            await asyncio.sleep(0.1)
        limits = [
            runner.store.max_keys
            for consumer in worker.owned.values()
            for detector in (consumer.engine.detectors if consumer.engine else ())
            if isinstance(detector, StatefulDetector)
            for runner in detector.runners
        ]
        worker.stop()
        await task
        await worker.close()
        return limits

    assert asyncio.run(scenario()) == [3] * 8


def test_bad_bus_messages_go_to_the_dead_letter_file_and_the_good_events_are_stored(
    nats_node: NatsNode, tmp_path: Path
) -> None:
    import nats

    good = _deletes("mallory", 1, 0)[0]
    partition = partition_of("mallory", 8)

    async def publish() -> None:
        publisher = BusPublisher(parse_bus_url(nats_node.url))
        await publisher.connect()  # creates the streams
        await publisher.close()
        connection = await nats.connect(nats_node.url)
        js = connection.jetstream()
        await js.publish(f"kubetrail.audit.prod.{partition}", b"this is not JSON")
        mixed = b'{"kind":"EventList","items":[{"kind":"Event","stage":42},' + encode_event(good) + b"]}"
        await js.publish(f"kubetrail.audit.prod.{partition}", mixed)
        forged = b'{"kind":"EventList","items":[' + encode_event(_deletes("mallory", 1, 7)[0]) + b"]}"
        await js.publish(f"kubetrail.audit.prod.{partition}", forged, headers={CLUSTER_HEADER: "../../etc"})
        await connection.close()

    asyncio.run(publish())
    lake = tmp_path / "lake"
    worker = Worker(parse_bus_url(nats_node.url), lake, "one")
    asyncio.run(_run_until(worker, 1))
    assert worker.stats.events == 1 and worker.stats.malformed == 1
    letters = [
        json.loads(line)
        for path in worker.store.layout.deadletter_dir.rglob("*")
        if path.is_file()
        for line in path.read_text().splitlines()
    ]
    reasons = " ".join(str(letter.get("reason")) for letter in letters)
    # the bad event names its field; the non-JSON message and the one naming an invalid cluster are kept too
    assert len(letters) == 3 and "stage" in reasons and "invalid cluster name" in reasons
    assert open_lake(lake).execute("select audit_id from events").fetchall() == [(good.auditID,)]


def test_receivers_and_workers_must_agree_on_the_partition_count(nats_node: NatsNode) -> None:
    import pytest

    from kubetrail.bus import BusError

    async def connect(partitions: int) -> None:
        publisher = BusPublisher(parse_bus_url(nats_node.url, partitions=partitions))
        try:
            await publisher.connect()
        finally:
            await publisher.close()

    asyncio.run(connect(8))
    with pytest.raises(BusError, match="set up with 8 partitions") as raised:
        asyncio.run(connect(4))
    assert "--bus-partitions 8" in raised.value.hint
