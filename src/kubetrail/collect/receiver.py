"""The webhook receiver: an ASGI app that kube-apiserver's webhook audit backend POSTs EventLists to.

`POST /audit/{cluster}` and `POST /k8s-audit` (Falco's path; the cluster comes from the sender's token or
certificate, else the default) accept an Event, an EventList or a JSON array of either, optionally gzip'd.
Every item is validated: invalid ones go to the store's dead-letter file with the reason, valid ones are
appended, and the answer is 200 only once the batch is fsynced in the WAL; 503 (with `Retry-After`) when it
cannot be made durable, or while too many batches are in hand or detection is too far behind (`backlogged`), so
the sender retries and dedup makes the retry safe. Also `GET /healthz`,
`GET /readyz` and `GET /metrics`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

from kubetrail.collect.auth import Authenticator, Identity
from kubetrail.collect.limits import ClientDisconnected, Limits, RequestError, read_body, too_large
from kubetrail.collect.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from kubetrail.collect.metrics import Registry
from kubetrail.intake import Batch, GzipError, InflateLimitError, NotJsonError, decode_body
from kubetrail.logs import ThrottledLog
from kubetrail.pipeline import Outcome, Pipeline, Sink
from kubetrail.store import StoreError, check_cluster

log = logging.getLogger(__name__)
quiet = ThrottledLog(log)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

AUDIT_PREFIX = "/audit/"
FALCO_PATH = "/k8s-audit"
DEFAULT_CLUSTER = "default"
RETRY_AFTER_SECONDS = 1
INLINE_BYTES = 1 << 20
"""Bodies below this are decoded on the event loop (a 400-event batch takes a few ms); larger ones in a thread."""

_encoder = msgspec.json.Encoder()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _respond(
    send: Send, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8", headers: Any = ()
) -> None:
    raw_headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *[(key.encode(), value.encode()) for key, value in headers],
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class Receiver:
    """The ASGI app: routes, authentication, limits, validation, durable append, health and metrics."""

    def __init__(
        self,
        target: Pipeline | Sink,
        *,
        default_cluster: str = DEFAULT_CLUSTER,
        limits: Limits | None = None,
        auth: Authenticator | None = None,
        metrics: Registry | None = None,
    ) -> None:
        """`target` is the pipeline batches go through (a bare sink gets a pipeline without redaction)."""
        self.pipeline = target if isinstance(target, Pipeline) else Pipeline(target, default_cluster=default_cluster)
        self.store = self.pipeline.sink
        self.default_cluster = check_cluster(default_cluster)
        self.limits = limits or Limits()
        self.auth = auth or Authenticator()
        self.metrics = metrics or Registry()
        self.accepting = True
        self.in_flight = 0
        self._last_failure: str | None = None
        self.health_checks: list[Callable[[], str | None]] = []
        """More reasons not to be ready (a failing cloud source); each returns None when all is well."""
        self.backlogged: Callable[[], bool] = lambda: False
        """True while what follows the store (detection) is too far behind: new batches get 503 meanwhile."""
        self.detection_refusals = 0

    # ----- routing --------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path == FALCO_PATH or path.startswith(AUDIT_PREFIX):
            if method != "POST":
                await self._answer(send, path, 405, "only POST is allowed here", headers=[("allow", "POST")])
                return
            cluster = None if path == FALCO_PATH else path[len(AUDIT_PREFIX) :]
            await self._post(scope, receive, send, path, cluster)
        elif path in ("/healthz", "/readyz", "/metrics"):
            if method not in ("GET", "HEAD"):
                await self._answer(send, path, 405, "only GET is allowed here", headers=[("allow", "GET, HEAD")])
            elif path == "/healthz":
                await self._answer(send, path, 200, "ok")
            elif path == "/readyz":
                problem = self.not_ready()
                await self._answer(send, path, 503 if problem else 200, problem or "ok")
            else:
                await _respond(send, 200, self.metrics.exposition(), METRICS_CONTENT_TYPE)
        else:
            await self._answer(send, "other", 404, "not found: POST events to /audit/<cluster> or /k8s-audit")

    def not_ready(self) -> str | None:
        """Why the receiver cannot take events durably right now, or None when it can."""
        if not self.accepting:
            return "shutting down"
        if self.store.read_only:
            return "the store is open read-only"
        wal_dir = getattr(getattr(self.store, "layout", None), "wal_dir", None)
        if wal_dir is not None and not os.access(wal_dir, os.W_OK):
            return "the store's WAL directory is not writable"
        if self._last_failure is not None:
            return self._last_failure
        for check in self.health_checks:
            problem = check()
            if problem is not None:
                return problem
        return None

    async def _answer(
        self, send: Send, path: str, status: int, message: str, headers: Any = (), hint: str = ""
    ) -> None:
        self.metrics.requests.inc(1, "/audit" if path.startswith(AUDIT_PREFIX) else path, str(status))
        text = message + (f" (hint: {hint})" if hint else "")
        await _respond(send, status, text.encode() + b"\n", headers=headers)

    # ----- accepting events -----------------------------------------------------------------------------

    def _cluster(self, identity: Identity | None, from_path: str | None) -> str:
        wanted = identity.cluster if identity is not None else None
        if from_path is not None and wanted is not None and from_path != wanted:
            raise RequestError(403, f"{identity.method if identity else 'sender'} may only write to cluster {wanted!r}")
        cluster = from_path or wanted or self.default_cluster
        try:
            return check_cluster(cluster)
        except StoreError as error:
            raise RequestError(400, error.message, hint=error.hint) from None

    async def _post(self, scope: Scope, receive: Receive, send: Send, path: str, from_path: str | None) -> None:
        if self.in_flight >= self.limits.max_in_flight:
            self.metrics.shed.inc(1)
            await self._answer(
                send, path, 503, "too many batches in hand; retry", headers=[("retry-after", str(RETRY_AFTER_SECONDS))]
            )
            return
        if self.backlogged():
            self.detection_refusals += 1
            await self._answer(
                send,
                path,
                503,
                "detection is behind; retry",
                headers=[("retry-after", str(RETRY_AFTER_SECONDS))],
            )
            return
        self.in_flight += 1
        try:
            await self._accept(scope, receive, send, path, from_path)
        finally:
            self.in_flight -= 1

    async def _accept(self, scope: Scope, receive: Receive, send: Send, path: str, from_path: str | None) -> None:
        client = scope.get("client") or ("?", 0)
        try:
            identity = self.auth.authenticate(scope)
            if self.auth.required and identity is None:
                quiet.warning("unauthenticated", "refused an unauthenticated request from %s to %s", client[0], path)
                raise RequestError(401, "authentication required", hint="send a bearer token or a client certificate")
            cluster = self._cluster(identity, from_path)
            if not self.accepting:
                raise RequestError(503, "shutting down; retry")
            body = await self._body(scope, receive)
            self.metrics.bytes.inc(len(body), self.metrics.cluster(cluster))
            gzipped = (_header(scope, b"content-encoding") or "").strip().lower() == "gzip"
            source = f"webhook {client[0]} {path}"
            if len(body) < INLINE_BYTES and not gzipped:
                batch = self._decode(body, gzipped, source)
            else:
                batch = await asyncio.to_thread(self._decode, body, gzipped, source)
        except ClientDisconnected:
            return
        except RequestError as error:
            headers = [("www-authenticate", "Bearer")] if error.status == 401 else []
            if error.status == 503:
                headers.append(("retry-after", str(RETRY_AFTER_SECONDS)))
            await self._answer(send, path, error.status, error.message, headers=headers, hint=error.hint)
            return
        await self._store(send, path, cluster, batch, source)

    def _decode(self, body: bytes, gzipped: bool, source: str) -> Batch:
        """Inflate and decode a body through the intake (large ones off the event loop)."""
        limits = self.limits
        try:
            return decode_body(
                body,
                source=source,
                gzipped=gzipped,
                max_body_bytes=limits.max_body_bytes,
                max_event_bytes=limits.max_event_bytes,
            )
        except NotJsonError as error:
            raise RequestError(400, f"the body is {error.message}") from None
        except InflateLimitError:
            raise too_large("the decompressed request body", limits.max_body_bytes) from None
        except GzipError as error:
            raise RequestError(400, f"the gzip body is unreadable: {error.message}") from None

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        content_type = (_header(scope, b"content-type") or "").strip()
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            shown = content_type[:100].encode("unicode_escape").decode() or "missing"
            raise RequestError(415, f"Content-Type must be application/json, not {shown}")
        encoding = (_header(scope, b"content-encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            raise RequestError(415, f"Content-Encoding {encoding} is not supported (use gzip or none)")
        length = _header(scope, b"content-length")
        declared = int(length) if length is not None and length.strip().isdigit() else None
        return await read_body(receive, self.limits.max_body_bytes, declared)

    async def _store(self, send: Send, path: str, cluster: str, batch: Batch, source: str) -> None:
        metrics = self.metrics
        received = len(batch.events) + len(batch.rejected)
        label = metrics.cluster(cluster)
        metrics.received.inc(received, label)
        started = time.perf_counter()
        metrics.queue.add(1)
        metrics.pending.add(len(batch.events))
        try:
            outcome: Outcome = await self.pipeline.accept_async(batch, cluster, source=source)
        except (StoreError, OSError) as error:
            self._last_failure = f"the last batch could not be made durable: {error}"
            log.error("answering 503 for %d events of %s: %s", received, cluster, error)
            await self._answer(
                send,
                path,
                503,
                "the batch could not be stored durably; retry",
                headers=[("retry-after", str(RETRY_AFTER_SECONDS))],
            )
            return
        finally:
            metrics.queue.add(-1)
            metrics.pending.add(-len(batch.events))
        self._last_failure = None
        metrics.ack.observe(time.perf_counter() - started)
        metrics.accepted.inc(outcome.accepted, label)
        metrics.duplicates.inc(outcome.duplicates, label)
        metrics.rejected.inc(outcome.rejected, label)
        if outcome.rejected:
            quiet.warning(
                "refused", "%s: %d invalid events of %s went to the dead-letter file", source, outcome.rejected, cluster
            )
        if not batch.events and batch.rejected:
            first = batch.rejected[0].reason
            await self._answer(send, path, 422, f"no valid audit events ({len(batch.rejected)} refused): {first}")
            return
        summary = {
            "cluster": cluster,
            "accepted": outcome.accepted,
            "duplicates": outcome.duplicates,
            "rejected": outcome.rejected,
        }
        metrics.requests.inc(1, "/audit" if path.startswith(AUDIT_PREFIX) else path, "200")
        await _respond(send, 200, _encoder.encode(summary) + b"\n", "application/json")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
