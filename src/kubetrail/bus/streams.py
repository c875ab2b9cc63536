"""Create (or check) the JetStream streams kubetrail publishes to."""

from __future__ import annotations

import asyncio

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.errors import Error as JetStreamError

from kubetrail.bus.config import BusConfig, BusError

MEMBER_TTL_SECONDS = 6.0
_PARTITIONS_NOTE = "partitions="


def _stream_config(
    name: str, prefix: str, config: BusConfig, retention: RetentionPolicy, description: str | None = None
) -> StreamConfig:
    return StreamConfig(
        name=name,
        description=description,
        subjects=[f"{prefix}.>"],
        storage=StorageType.FILE,
        num_replicas=config.replicas,
        duplicate_window=config.duplicate_window_seconds,
        retention=retention,
    )


def stream_partitions(description: str | None) -> int | None:
    """The partition count the events stream was created with (None when it does not say)."""
    for word in (description or "").split():
        if word.startswith(_PARTITIONS_NOTE) and word[len(_PARTITIONS_NOTE) :].isdigit():
            return int(word[len(_PARTITIONS_NOTE) :])
    return None


async def ensure_streams(js: JetStreamContext, config: BusConfig, *, wait_seconds: float = 30.0) -> None:
    """The events stream (work queue: each batch is removed once a worker acked it), the alerts stream and the
    key-value bucket where workers announce themselves and lease partitions.

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
    note = f"kubetrail audit events, {_PARTITIONS_NOTE}{config.partitions}"
    wanted = [
        _stream_config(config.stream, config.subject_prefix, config, RetentionPolicy.WORK_QUEUE, note),
        _stream_config(config.alerts_stream, config.alerts_prefix, config, RetentionPolicy.LIMITS),
    ]
    for stream in wanted:
        assert stream.name is not None
        try:
            info = await js.stream_info(stream.name)
        except NotFoundError:
            await js.add_stream(stream)
            continue
        if stream.name == config.stream:
            existing = stream_partitions(info.config.description)
            if existing is not None and existing != config.partitions:
                raise BusError(
                    f"the stream {config.stream} was set up with {existing} partitions, not {config.partitions}",
                    hint=f"give every receiver and worker --bus-partitions {existing}",
                )
    try:
        await js.key_value(config.members_bucket)
    except BucketNotFoundError:
        await js.create_key_value(
            KeyValueConfig(bucket=config.members_bucket, ttl=MEMBER_TTL_SECONDS, history=1, replicas=config.replicas)
        )
