"""Body limits and gzip inflation, and the Prometheus text the receiver's metrics render."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import MutableMapping
from typing import Any

import pytest

from kubetrail.collect.limits import ClientDisconnected, RequestError, gunzip, read_body
from kubetrail.collect.metrics import Registry


def receiver_of(*messages: dict[str, Any]) -> Any:
    queue = list(messages)

    async def receive() -> MutableMapping[str, Any]:
        return queue.pop(0)

    return receive


def test_read_body_joins_chunks_and_stops_at_the_limit() -> None:
    chunks = receiver_of(
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"cd", "more_body": False},
    )
    assert asyncio.run(read_body(chunks, 4)) == b"abcd"
    over = receiver_of(
        {"type": "http.request", "body": b"abc", "more_body": True},
        {"type": "http.request", "body": b"de", "more_body": False},
    )
    with pytest.raises(RequestError) as caught:
        asyncio.run(read_body(over, 4))
    assert caught.value.status == 413


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    with pytest.raises(RequestError) as caught:
        asyncio.run(read_body(receiver_of(), 10, content_length=11))
    assert caught.value.status == 413


def test_a_disconnect_mid_body_is_not_answered() -> None:
    with pytest.raises(ClientDisconnected):
        asyncio.run(read_body(receiver_of({"type": "http.disconnect"}), 10))


def test_gunzip_reads_concatenated_members() -> None:
    assert gunzip(gzip.compress(b"[1,") + gzip.compress(b"2]"), 100) == b"[1,2]"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (gzip.compress(b"x" * 1000)[:-9], 400),
        (b"not gzip at all", 400),
        (b"", 400),
        (gzip.compress(b"0" * (1 << 20)), 413),
    ],
    ids=["truncated", "not-gzip", "empty", "bomb"],
)
def test_gunzip_refuses_damage_and_bombs(data: bytes, status: int) -> None:
    with pytest.raises(RequestError) as caught:
        gunzip(data, 64 << 10)
    assert caught.value.status == status


def test_gunzip_of_a_body_exactly_at_the_limit() -> None:
    body = bytes(range(256)) * 40
    assert gunzip(zlib.compress(body, wbits=31), len(body)) == body


def test_metrics_render_escaped_labels_and_cumulative_buckets() -> None:
    registry = Registry()
    registry.accepted.inc(3, 'a"b\\c')
    registry.fsync.observe(0.0004)
    registry.fsync.observe(0.003)
    registry.fsync.observe(99.0)
    text = registry.exposition().decode()
    assert 'kubetrail_receiver_events_accepted_total{cluster="a\\"b\\\\c"} 3' in text
    assert 'kubetrail_wal_fsync_seconds_bucket{le="0.0005"} 1' in text
    assert 'kubetrail_wal_fsync_seconds_bucket{le="0.005"} 2' in text
    assert 'kubetrail_wal_fsync_seconds_bucket{le="+Inf"} 3' in text
    assert "kubetrail_wal_fsync_seconds_count 3" in text
    assert "# TYPE kubetrail_receiver_queue_depth gauge" in text
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(names) == len(set(names))
