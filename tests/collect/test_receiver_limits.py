"""Body limits and gzip inflation, and the Prometheus text the receiver's metrics render."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest

from kubetrail.collect.limits import ClientDisconnected, RequestError, read_body
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
