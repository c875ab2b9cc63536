"""What the push sources (Firehose's HTTP endpoint, Pub/Sub push) share: ASGI middleware on serve's receiver
port that takes `POST <path>[/<cluster>]` and hands every other request on, bounded like the webhook, and the
Source protocol's face in `/metrics` and `/readyz` (`name`, `stats`, `health`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import msgspec

from kubetrail.collect.limits import Limits, RequestError
from kubetrail.collect.metrics import Registry
from kubetrail.intake import Batch
from kubetrail.pipeline import Pipeline
from kubetrail.sources.base import SourceStats, deliver_async
from kubetrail.store import StoreError, check_cluster

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_encoder = msgspec.json.Encoder()


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower-case bytes), or None."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class PushEndpoint:
    """The shared half of a push endpoint; a subclass sets `path` and writes `_post` and `_refuse`."""

    path = ""

    def __init__(
        self,
        app: App,
        pipeline: Pipeline,
        *,
        limits: Limits | None,
        metrics: Registry | None,
        accepting: Callable[[], bool],
        name: str,
    ) -> None:
        self.app = app
        self.pipeline = pipeline
        self.limits = limits or Limits()
        self.metrics = metrics or Registry()
        self.accepting = accepting
        self.name = name
        self.stats = SourceStats()
        self.in_flight = 0
        self._last_failure: str | None = None

    # ----- the Source protocol (a push source has nothing to start) -------------------------------------------

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def health(self) -> str | None:
        return None if self._last_failure is None else f"source {self.name} is failing: {self._last_failure}"

    # ----- requests --------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope.get("type") == "http" else ""
        if path != self.path and not path.startswith(self.path + "/"):
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await self._refuse(scope, send, 405, "only POST is allowed here", [("allow", "POST")])
            return
        if self.in_flight >= self.limits.max_in_flight:
            await self._refuse(scope, send, 503, "too many requests in hand; retry", [("retry-after", "1")])
            return
        self.in_flight += 1
        try:
            await self._post(scope, receive, send, path)
        finally:
            self.in_flight -= 1

    async def _post(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        raise NotImplementedError

    async def _refuse(self, scope: Scope, send: Send, status: int, error: str, headers: list[tuple[str, str]]) -> None:
        """Answer before the request is read (405, 503)."""
        raise NotImplementedError

    def _failed(self, error: RequestError) -> list[tuple[str, str]]:
        """Count a refused request (client errors other than 400 are the sender's business) and the headers its
        answer carries."""
        if error.status >= 500 or error.status == 400:
            self.stats.errors += 1
        return [("retry-after", "1")] if error.status == 503 else []

    def _named_cluster(self, path: str) -> str | None:
        """The cluster the path names after `<path>/` (None when it names none); 400 for an invalid name."""
        named = path[len(self.path) + 1 :] or None
        if named is not None:
            try:
                check_cluster(named)
            except StoreError as error:
                raise RequestError(400, error.message, hint=error.hint) from None
        return named

    def _cluster_of(self, delivered: str | None, allowed: str | None, what: str) -> str:
        """The cluster a delivery is stored under: the allowed one, else its own, else the default."""
        try:
            return check_cluster(allowed or delivered or self.pipeline.default_cluster)
        except StoreError as error:
            raise RequestError(400, f"{what} names no valid cluster: {error.message}") from None

    async def _deliver(self, batches: Sequence[Batch], clusters: Sequence[str], source: str) -> None:
        """Every batch through the pipeline (durable when this returns); StoreError or OSError when not."""
        for batch, cluster in zip(batches, clusters, strict=True):
            if not batch.events and not batch.rejected:
                self.stats.skipped += sum(batch.skipped.values())
                continue
            await deliver_async(self.pipeline, batch, cluster, source, self.stats)

    async def _send_json(
        self, send: Send, status: int, document: dict[str, object], headers: list[tuple[str, str]] | None = None
    ) -> None:
        """`document` as the JSON answer, counted in /metrics under this endpoint's path."""
        self.metrics.requests.inc(1, self.path, str(status))
        body = _encoder.encode(document)
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *[(key.encode(), value.encode()) for key, value in headers or ()],
        ]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})
