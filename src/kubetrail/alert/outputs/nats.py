"""Alerts published to a NATS subject, one Falco JSON alert per message (nats-py, the `nats` extra).

nats-py is asyncio-only; the output runs its own event loop in a thread so it can be called like the others.
A batch counts as delivered once the server has acknowledged a flush after it. nats-py reconnects a few times
by itself; after that the batch fails (counted) and the next batch starts a fresh connection.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from kubetrail.alert.outputs.base import OutputError
from kubetrail.detect.alert import Alert

T = TypeVar("T")
RECONNECT_ATTEMPTS = 3
RECONNECT_WAIT_SECONDS = 0.5


class NatsOutput:
    """Publishes to `subject` on `servers`."""

    def __init__(
        self,
        servers: str | list[str],
        subject: str,
        *,
        timeout: float = 5.0,
        name: str = "nats",
        options: dict[str, Any] | None = None,
    ) -> None:
        try:
            import nats  # noqa: F401
        except ImportError:
            raise OutputError(
                "the NATS output needs nats-py", output=name, hint="pip install 'kubetrail[nats]'"
            ) from None
        if not subject or any(ch.isspace() for ch in subject):
            raise OutputError(f"{subject!r} is not a NATS subject", output=name)
        self.name = name
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        self.subject = subject
        self.timeout = timeout
        self._options = options or {}
        self._client: Any = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"kubetrail-{name}", daemon=True)
        self._thread.start()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(self.timeout * 3)
        except TimeoutError:
            future.cancel()
            raise

    async def _connect(self) -> Any:
        import nats

        if self._client is None or self._client.is_closed:
            self._client = await nats.connect(
                self.servers,
                connect_timeout=self.timeout,
                allow_reconnect=True,
                max_reconnect_attempts=RECONNECT_ATTEMPTS,
                reconnect_time_wait=RECONNECT_WAIT_SECONDS,
                **self._options,
            )
        return self._client

    async def _publish(self, payloads: list[bytes]) -> None:
        client = await self._connect()
        if not client.is_connected:  # reconnecting: publishing would only fill nats-py's buffer
            raise ConnectionError("not connected (reconnecting)")
        for payload in payloads:
            await client.publish(self.subject, payload)
        await client.flush(timeout=self.timeout)
        if not client.is_connected:  # the flush could not reach the server: not known to be delivered
            raise ConnectionError("the connection was lost before the server confirmed the batch")

    def send(self, alerts: Sequence[Alert]) -> None:
        try:
            self._run(self._publish([alert.to_falco_json() for alert in alerts]))
        except Exception as error:
            raise OutputError(
                f"cannot publish to {self.subject}: {type(error).__name__} {error}", output=self.name
            ) from None

    async def _close(self) -> None:
        if self._client is not None and not self._client.is_closed:
            await self._client.drain()

    def close(self) -> None:
        try:
            self._run(self._close())
        except Exception:
            pass
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(self.timeout)
            if not self._thread.is_alive():
                self._loop.close()
