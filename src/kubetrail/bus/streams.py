"""Create (or check) the JetStream streams kubetrail publishes to."""

from __future__ import annotations

import asyncio

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import Error as JetStreamError
from nats.js.errors import NotFoundError

from kubetrail.bus.config import BusConfig, BusError


def _stream_config(name: str, prefix: str, config: BusConfig, retention: RetentionPolicy) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=[f"{prefix}.>"],
        storage=StorageType.FILE,
        num_replicas=config.replicas,
        duplicate_window=config.duplicate_window_seconds,
        retention=retention,
    )


async def ensure_streams(js: JetStreamContext, config: BusConfig, *, wait_seconds: float = 30.0) -> None:
    """The events stream (work queue: each batch is removed once a worker acked it) and the alerts stream.

    A cluster that is still electing its JetStream leader refuses for a moment: retried for `wait_seconds`.
    """
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        try:
            await _ensure(js, config)
            return
        except (JetStreamError, NatsTimeoutError, TimeoutError) as error:
            if asyncio.get_running_loop().time() > deadline:
                raise BusError(f"JetStream refused the streams: {str(error) or type(error).__name__}") from error
            await asyncio.sleep(0.5)


async def _ensure(js: JetStreamContext, config: BusConfig) -> None:
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
