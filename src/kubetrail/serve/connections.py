"""Connection hygiene for `serve`: no client may hold connections it does not use.

A mixin over uvicorn's HTTP protocol classes (they keep `cycle`, `transport`, `client`, `connections`, `loop`):

- a request's headers must arrive within HEADER_TIMEOUT of its first byte, and a body must keep moving (no gap
  longer than BODY_TIMEOUT); a new connection must start a request within IDLE_TIMEOUT. Otherwise it is closed;
- one client (address) holds at most PER_CLIENT connections and all clients at most MAX_CONNECTIONS: beyond
  that, the connection that has waited longest without a complete request is closed to make room (an idle or
  stalled one), and only when every connection is busy is the new one refused.

So connections that send a byte and stop cannot exhaust the server: they are closed within seconds, and a
health probe or an apiserver batch always finds a place. Requests that are being handled are never cut.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from kubetrail.logs import ThrottledLog

log = logging.getLogger(__name__)
quiet = ThrottledLog(log)

HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 30.0
IDLE_TIMEOUT = 30.0
PER_CLIENT = 64
MAX_CONNECTIONS = 1024
_CHECK_EVERY = 1.0


class GuardedConnection:
    """Mix in before a uvicorn HTTP protocol class: `class P(GuardedConnection, H11Protocol)`."""

    cycle: Any
    transport: asyncio.Transport
    client: tuple[str, int] | None
    connections: set[Any]
    loop: asyncio.AbstractEventLoop

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        now = time.monotonic()
        self._opened = now
        self._last_data = now
        self._request_started: float | None = None
        self._guard: asyncio.TimerHandle | None = None
        if not self._make_room():
            quiet.warning("refused", "refused a connection from %s: every connection is busy", self._host())
            transport.close()
            return
        self._guard = self.loop.call_later(_CHECK_EVERY, self._check)

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_guard", None) is not None:
            self._guard.cancel()  # type: ignore[union-attr]
            self._guard = None
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self._last_data = now
        if self._waiting() and self._request_started is None:
            self._request_started = now
        super().data_received(data)  # type: ignore[misc]
        if not self._waiting():
            self._request_started = None

    # ----- state ----------------------------------------------------------------------------------------------

    def _host(self) -> str:
        return self.client[0] if self.client else ""

    def _waiting(self) -> bool:
        """True between requests: no request in progress, so the connection holds nothing worth keeping."""
        cycle = self.cycle
        return cycle is None or bool(cycle.response_complete)

    def _waiting_since(self) -> float:
        if self._request_started is not None:
            return self._request_started
        return self._last_data if self.cycle is not None else self._opened

    # ----- limits ---------------------------------------------------------------------------------------------

    def _make_room(self) -> bool:
        """Close the longest-waiting connection where a limit is passed; False when none can go for this one."""
        others = [item for item in self.connections if item is not self and isinstance(item, GuardedConnection)]
        host = self._host()
        mine = [item for item in others if item._host() == host]
        for group, limit in ((mine, PER_CLIENT), (others, MAX_CONNECTIONS)):
            if len(group) + 1 <= limit:
                continue
            idle = [item for item in group if item._waiting() and not item.transport.is_closing()]
            if not idle:
                return False
            oldest = min(idle, key=lambda item: item._waiting_since())
            oldest.transport.close()
        return True

    def _check(self) -> None:
        self._guard = None
        if self.transport.is_closing():
            return
        now = time.monotonic()
        reason = ""
        if self._waiting():
            if self._request_started is not None and now - self._request_started > HEADER_TIMEOUT:
                reason = f"no complete request headers within {HEADER_TIMEOUT:.0f} s"
            elif self.cycle is None and self._request_started is None and now - self._opened > IDLE_TIMEOUT:
                reason = f"no request within {IDLE_TIMEOUT:.0f} s of connecting"
        elif getattr(self.cycle, "more_body", False) and now - self._last_data > BODY_TIMEOUT:
            reason = f"the request body stopped for {BODY_TIMEOUT:.0f} s"
        if reason:
            quiet.warning("closed", "closed a connection from %s: %s", self._host(), reason)
            self.transport.close()
            return
        self._guard = self.loop.call_later(_CHECK_EVERY, self._check)
