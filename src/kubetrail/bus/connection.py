"""Connecting to the bus: fail fast and clearly at start, reconnect forever once running."""

from __future__ import annotations

import asyncio
import logging

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError

from kubetrail.bus.config import BusConfig, BusError

log = logging.getLogger(__name__)

FIRST_CONNECT_SECONDS = 10.0


async def _log_error(error: Exception) -> None:
    log.warning("NATS: %s", str(error) or type(error).__name__)


async def connect(config: BusConfig, name: str) -> Client:
    """A connection to any of the configured servers; BusError when none answers within 10 s."""
    try:
        return await asyncio.wait_for(
            nats.connect(
                servers=list(config.servers),
                name=name,
                connect_timeout=2,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                error_cb=_log_error,
            ),
            timeout=FIRST_CONNECT_SECONDS,
        )
    except (OSError, NatsError, TimeoutError) as error:
        raise BusError(
            f"cannot reach NATS at {', '.join(config.servers)}: {str(error) or 'no answer within 10 s'}",
            hint="start nats-server with JetStream (-js) or fix --bus",
        ) from error
