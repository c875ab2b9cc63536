"""Create (or check) the JetStream streams kubetrail publishes to."""

from __future__ import annotations

from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from kubetrail.bus.config import BusConfig


def _stream_config(name: str, prefix: str, config: BusConfig, retention: RetentionPolicy) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=[f"{prefix}.>"],
        storage=StorageType.FILE,
        num_replicas=config.replicas,
        duplicate_window=config.duplicate_window_seconds,
        retention=retention,
    )


async def ensure_streams(js: JetStreamContext, config: BusConfig) -> None:
    """The events stream (work queue: each batch is removed once a worker acked it) and the alerts stream."""
    wanted = [
        _stream_config(config.stream, config.subject_prefix, config, RetentionPolicy.WORK_QUEUE),
        _stream_config(config.alerts_stream, config.alerts_prefix, config, RetentionPolicy.LIMITS),
    ]
    for stream in wanted:
        assert stream.name is not None
        try:
            await js.stream_info(stream.name)
        except NotFoundError:
            await js.add_stream(stream)
