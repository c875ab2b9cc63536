"""The EKS pull source against a real CloudWatch Logs API (moto's server on loopback, boto3 pointed at it).

What AWS documents and these tests hold it to: GetLogEvents read forward (`startFromHead`) with
`nextForwardToken` returns the token it was given at a stream's end; a stream's events come in timestamp
order; throttled calls answer ThrottlingException (moto cannot throttle, so a botocore `before-send` hook
answers it, with AWS's JSON error body and status 400, for the first calls).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kubetrail.collect.metrics import Registry
from kubetrail.pipeline import Pipeline
from kubetrail.sources.base import Backoff
from kubetrail.sources.checkpoint import SourceCheckpoints
from kubetrail.sources.config import Entry
from kubetrail.sources.eks import TYPE, EksCloudWatchSource, Position, parse_spec
from kubetrail.sources.metrics import register_source_metrics
from kubetrail.store import Store
from tests.serve.helpers import audit_ids
from tests.sources.helpers import REGION, aws_environment, logs_client, moto_server, put_audit, unique_cluster

pytest.importorskip("boto3", reason="the aws extra (boto3) is not installed")

NOW = int(time.time() * 1000) - 60_000


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with aws_environment(), moto_server() as url:
        yield url


@pytest.fixture
def client(moto: str) -> Any:
    return logs_client(moto)


class Harness:
    """A store, a pipeline and a checkpoint folder, and EKS sources over them (as serve wires them)."""

    def __init__(self, folder: Path, url: str, cluster: str) -> None:
        self.folder = folder
        self.url = url
        self.cluster = cluster
        self.group = f"/aws/eks/{cluster}/cluster"
        self.store = Store.open(folder / "store")
        self.pipeline = Pipeline(self.store)
        self.checkpoints = SourceCheckpoints(folder / "store" / "checkpoints")

    def source(self, **settings: Any) -> EksCloudWatchSource:
        values = {"type": TYPE, "log-group": self.group, "region": REGION, "endpoint-url": self.url, **settings}
        spec = parse_spec(Entry(values, "test.yaml", "sources[0]", "default"))
        source = spec.open(self.pipeline, self.checkpoints)
        return source

    def stored(self) -> list[str]:
        self.store.close()
        return audit_ids(self.folder / "store")


@pytest.fixture
def harness(tmp_path: Path, moto: str, client: Any) -> Iterator[Harness]:
    cluster = unique_cluster()
    made = Harness(tmp_path, moto, cluster)
    client.create_log_group(logGroupName=made.group)
    yield made
    made.store.close()


def drain(source: EksCloudWatchSource, rounds: int = 20) -> int:
    """Poll until a round delivers nothing (the source is caught up); returns what was delivered."""
    total = 0
    for _ in range(rounds):
        delivered = source.poll_once()
        total += delivered
        if not delivered:
            return total
    raise AssertionError("the source never caught up")


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_every_audit_stream_is_read_into_the_store_with_the_cluster_label(harness: Harness, client: Any) -> None:
    group = harness.group
    for stream in ("kube-apiserver-audit-aaa", "kube-apiserver-audit-bbb", "authenticator-ccc"):
        client.create_log_stream(logGroupName=group, logStreamName=stream)
    first = put_audit(client, group, "kube-apiserver-audit-aaa", range(0, 30), prefix="a", stamp=NOW)
    second = put_audit(client, group, "kube-apiserver-audit-bbb", range(0, 20), prefix="b", stamp=NOW)
    put_audit(client, group, "authenticator-ccc", range(0, 5), prefix="not-read", stamp=NOW)
    client.put_log_events(
        logGroupName=group,
        logStreamName="kube-apiserver-audit-aaa",
        logEvents=[{"timestamp": NOW + 100, "message": "I0501 10:00:00.000 1 controller.go:1] not an audit event"}],
    )
    source = harness.source()
    assert drain(source) == 51
    assert (source.stats.events, source.stats.skipped, source.stats.duplicates) == (50, 1, 0)
    assert source.stats.lag_seconds == 0.0
    store = harness.store
    clusters = store.query_connection().execute("select distinct cluster from events").fetchall()
    assert clusters == [(harness.cluster,)]
    assert sorted(harness.stored()) == sorted(first + second)


def test_a_stream_created_mid_run_is_followed(harness: Harness, client: Any) -> None:
    group = harness.group
    client.create_log_stream(logGroupName=group, logStreamName="kube-apiserver-audit-old")
    old = put_audit(client, group, "kube-apiserver-audit-old", range(10), prefix="old", stamp=NOW)
    source = harness.source(**{"poll-interval": "20ms", "discover-interval": "50ms"})
    source.start()
    try:
        wait_for(lambda: source.stats.events == 10)
        client.create_log_stream(logGroupName=group, logStreamName="kube-apiserver-audit-new")
        new = put_audit(client, group, "kube-apiserver-audit-new", range(15), prefix="new", stamp=NOW + 1000)
        more = put_audit(client, group, "kube-apiserver-audit-old", range(10, 13), prefix="old", stamp=NOW + 2000)
        wait_for(lambda: source.stats.events == 28)
    finally:
        source.stop()
    assert sorted(harness.stored()) == sorted(old + new + more)


def test_a_restart_resumes_each_stream_at_its_checkpoint(harness: Harness, client: Any) -> None:
    group = harness.group
    for stream in ("kube-apiserver-audit-1", "kube-apiserver-audit-2"):
        client.create_log_stream(logGroupName=group, logStreamName=stream)
    sent = put_audit(client, group, "kube-apiserver-audit-1", range(40), prefix="one", stamp=NOW)
    sent += put_audit(client, group, "kube-apiserver-audit-2", range(25), prefix="two", stamp=NOW)
    first = harness.source()
    drain(first)
    first.stop()
    sent += put_audit(client, group, "kube-apiserver-audit-1", range(40, 47), prefix="one", stamp=NOW + 5000)
    second = harness.source()
    drain(second)
    # read from the checkpoint, not re-read and absorbed by dedup: nothing delivered twice
    assert (second.stats.events, second.stats.duplicates) == (7, 0)
    stored = harness.stored()
    assert len(stored) == len(set(stored)) and sorted(stored) == sorted(sent)


def test_a_crash_between_the_fsync_and_the_checkpoint_redelivers_one_page_which_dedup_absorbs(
    harness: Harness, client: Any
) -> None:
    group = harness.group
    client.create_log_stream(logGroupName=group, logStreamName="kube-apiserver-audit-x")
    sent = put_audit(client, group, "kube-apiserver-audit-x", range(12), prefix="x", stamp=NOW)
    source = harness.source()
    source.poll_once()  # discovers the stream and reads it (its checkpoint saved)
    sent += put_audit(client, group, "kube-apiserver-audit-x", range(12, 20), prefix="x", stamp=NOW + 100)
    saved = harness.checkpoints.save

    def crash(kind: str, key: str, position: object) -> None:
        raise SystemExit("killed before the checkpoint")

    harness.checkpoints.save = crash  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        source.poll_once()
    harness.checkpoints.save = saved  # type: ignore[method-assign]
    restarted = harness.source()
    drain(restarted)
    assert (restarted.stats.events, restarted.stats.duplicates) == (0, 8)
    stored = harness.stored()
    assert len(stored) == len(set(stored)) and sorted(stored) == sorted(sent)


def throttle_first(source: EksCloudWatchSource, calls: int, attempts: list[float]) -> None:
    """Answer the first `calls` GetLogEvents requests as CloudWatch does when throttled (HTTP 400, JSON error)."""
    from botocore.awsrequest import AWSResponse

    class Raw:
        def __init__(self, body: bytes) -> None:
            self.body = body

        def stream(self, **_: Any) -> Iterator[bytes]:
            yield self.body

    def hook(request: Any, **_: Any) -> AWSResponse | None:
        attempts.append(time.monotonic())
        if len(attempts) > calls:
            return None
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        headers = {"x-amzn-RequestId": "test", "Content-Type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, 400, headers, Raw(body))

    source.client.meta.events.register("before-send.cloudwatch-logs.GetLogEvents", hook)


def test_throttling_is_backed_off_exponentially_and_loses_nothing(harness: Harness, client: Any) -> None:
    group = harness.group
    client.create_log_stream(logGroupName=group, logStreamName="kube-apiserver-audit-t")
    sent = put_audit(client, group, "kube-apiserver-audit-t", range(30), prefix="t", stamp=NOW)
    source = harness.source(**{"poll-interval": "10ms"})
    source.backoff = Backoff(base=0.05, cap=0.3, jitter=lambda ceiling: ceiling)
    attempts: list[float] = []
    throttle_first(source, 5, attempts)
    registry = Registry()
    register_source_metrics(registry, [source])
    source.start()
    try:
        wait_for(lambda: source.stats.events == 30)
    finally:
        source.stop()
    assert source.waits[:5] == [0.05, 0.1, 0.2, 0.3, 0.3]  # doubling, capped
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts[:6])]
    assert all(gap >= wait * 0.9 for gap, wait in zip(gaps, source.waits, strict=True)), gaps
    assert (source.stats.throttled, source.stats.errors, source.stats.consecutive_failures) == (5, 0, 0)
    text = registry.exposition().decode()
    assert f'kubetrail_source_throttled_total{{source="{source.name}"}} 5' in text
    assert f'kubetrail_source_events_total{{source="{source.name}"}} 30' in text
    stored = harness.stored()
    assert len(stored) == len(set(stored)) and sorted(stored) == sorted(sent)


def test_an_expired_token_resumes_by_time_skipping_what_was_delivered_at_that_millisecond(
    harness: Harness, client: Any
) -> None:
    group, stream = harness.group, "kube-apiserver-audit-e"
    client.create_log_stream(logGroupName=group, logStreamName=stream)
    events = [put_audit(client, group, stream, [number], prefix="e", stamp=NOW)[0] for number in range(3)]
    source = harness.source()
    drain(source)
    position = source.position.streams[stream]
    assert (position.last_timestamp, position.at_last) == (NOW, 3)
    events += [put_audit(client, group, stream, [number], prefix="e", stamp=NOW)[0] for number in range(3, 5)]
    events += put_audit(client, group, stream, [5], prefix="e", stamp=NOW + 1)
    aged = msgspec.structs.replace(position, received=time.time() - 25 * 3600)
    source.position.streams[stream] = aged
    harness.checkpoints.save(TYPE, group, source.position)
    resumed = harness.source()
    drain(resumed)
    assert (resumed.stats.events, resumed.stats.duplicates) == (3, 0)
    stored = harness.stored()
    assert sorted(stored) == sorted(events) and len(stored) == len(set(stored))


def test_from_end_skips_what_was_there_at_the_first_start_only(harness: Harness, client: Any) -> None:
    group = harness.group
    client.create_log_stream(logGroupName=group, logStreamName="kube-apiserver-audit-old")
    put_audit(client, group, "kube-apiserver-audit-old", range(5), prefix="before", stamp=NOW)
    source = harness.source(**{"from": "end"})
    assert drain(source) == 0
    after = put_audit(
        client, group, "kube-apiserver-audit-old", range(3), prefix="after", stamp=int(time.time() * 1000)
    )
    client.create_log_stream(logGroupName=group, logStreamName="kube-apiserver-audit-new")
    after += put_audit(client, group, "kube-apiserver-audit-new", range(4), prefix="new", stamp=NOW)
    source._next_discovery = 0.0
    drain(source)
    assert sorted(harness.stored()) == sorted(after)


def test_a_stream_deleted_by_retention_is_forgotten(harness: Harness, client: Any) -> None:
    group = harness.group
    client.create_log_stream(logGroupName=group, logStreamName="kube-apiserver-audit-gone")
    put_audit(client, group, "kube-apiserver-audit-gone", range(2), prefix="g", stamp=NOW)
    source = harness.source()
    drain(source)
    client.delete_log_stream(logGroupName=group, logStreamName="kube-apiserver-audit-gone")
    source._skip.clear()
    source.poll_once()
    assert source.position.streams == {}
    saved = harness.checkpoints.load(TYPE, group, Position)
    assert saved is not None and saved.streams == {}


def test_a_missing_log_group_makes_the_source_fail_and_say_so(tmp_path: Path, moto: str) -> None:
    made = Harness(tmp_path, moto, unique_cluster())  # the log group is never created
    source = made.source(**{"poll-interval": "10ms"})
    source.backoff = Backoff(base=0.001, cap=0.001)
    try:
        for _ in range(5):
            assert source.health() is None
            source.step()
        problem = source.health()
        assert problem is not None and source.name in problem and "ResourceNotFoundException" in problem
        assert source.stats.errors == 5 and "testing" not in problem
    finally:
        made.store.close()


def test_the_stop_of_a_running_source_is_prompt(harness: Harness) -> None:
    source = harness.source(**{"poll-interval": "1h"})
    source.start()
    time.sleep(0.2)
    started = time.monotonic()
    thread = threading.Thread(target=source.stop)
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive() and time.monotonic() - started < 2
