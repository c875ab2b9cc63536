"""EKS, pushed: Amazon Data Firehose's HTTP endpoint delivery, on serve's receiver port.

CloudWatch Logs subscription filter → Firehose stream (HTTP endpoint destination) → `POST /firehose/<cluster>`
(or `POST /firehose`: each delivery's cluster from its log group `/aws/eks/<cluster>/cluster`).

As Amazon documents the exchange (HTTP endpoint delivery request and response specifications, version 1.0):
the request is JSON `{"requestId", "timestamp", "records": [{"data": "<base64>"}]}` (the body gzip'd with
`Content-Encoding: gzip` when the stream is set to), with `X-Amz-Firehose-Request-Id` and the configured
`X-Amz-Firehose-Access-Key`; each record of a CloudWatch Logs subscription is a gzip'd `DATA_MESSAGE` (or the
bare message when Firehose decompresses and extracts). The answer is JSON `{"requestId", "timestamp"}` with
200, and only 200 counts as delivered; anything else carries `errorMessage` and Firehose retries the request
(same requestId) until its retry duration runs out, then backs the records up to S3.

Guarantees, the webhook's: the access key is compared in constant time (keys file: `KEY[,CLUSTER]` lines, like
`--token-file`; never logged); a missing key is 401, a wrong one 403, and nothing is read or written for
them; the body is limited before and after gzip; 200 is sent only after every event of the request is in the
WAL and fsynced; 503 when that fails, so Firehose retries and the store's dedup absorbs what was already in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from kubetrail.collect.auth import TokenTable
from kubetrail.collect.limits import ClientDisconnected, Limits, RequestError, read_body, too_large
from kubetrail.collect.metrics import Registry
from kubetrail.intake import GzipError, InflateLimitError, IntakeError, NotJsonError, gunzip
from kubetrail.intake.eks import FirehoseRequest, decode_firehose
from kubetrail.logs import ThrottledLog
from kubetrail.pipeline import Pipeline
from kubetrail.sources.base import event_age
from kubetrail.sources.push import App, PushEndpoint, Receive, Scope, Send, header
from kubetrail.store import StoreError

log = logging.getLogger(__name__)
quiet = ThrottledLog(log)

PATH = "/firehose"
ACCESS_KEY = b"x-amz-firehose-access-key"
REQUEST_ID = b"x-amz-firehose-request-id"


class FirehoseEndpoint(PushEndpoint):
    """ASGI middleware: `POST /firehose[/<cluster>]` is handled here, every other request goes to `app`.

    It is also the push source's face in `/metrics` and `/readyz` (`name`, `stats`, `health`).
    """

    path = PATH

    def __init__(
        self,
        app: App,
        pipeline: Pipeline,
        keys: TokenTable,
        *,
        limits: Limits | None = None,
        metrics: Registry | None = None,
        accepting: Callable[[], bool] = lambda: True,
        name: str = "firehose",
    ) -> None:
        super().__init__(app, pipeline, limits=limits, metrics=metrics, accepting=accepting, name=name)
        self.keys = keys

    async def _refuse(self, scope: Scope, send: Send, status: int, error: str, headers: list[tuple[str, str]]) -> None:
        await self._answer(send, (header(scope, REQUEST_ID) or "")[:256], status, error, headers)

    async def _post(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        request_id = (header(scope, REQUEST_ID) or "")[:256]
        client = (scope.get("client") or ("?", 0))[0]
        try:
            cluster = self._authorize(scope, path, client)
            if not self.accepting():
                raise RequestError(503, "shutting down; retry")
            body = await self._body(scope, receive)
            gzipped = (header(scope, b"content-encoding") or "").strip().lower() == "gzip"
            source = f"firehose {client} {path}"
            # off the event loop: records are gzip'd, and a 1 MiB request may inflate tenfold
            request = await asyncio.to_thread(self._decode, body, gzipped, source)
            if request_id and request.request_id != request_id:
                raise RequestError(400, "the body's requestId differs from X-Amz-Firehose-Request-Id")
            request_id = request.request_id[:256]
            clusters = [self._cluster_of(batch.cluster, cluster, "the log group") for batch in request.batches]
        except ClientDisconnected:
            return
        except RequestError as error:
            headers = self._failed(error)
            message = error.message + (f" (hint: {error.hint})" if error.hint else "")
            await self._answer(send, request_id, error.status, message, headers)
            return
        await self._store(send, request, clusters, source)

    def _authorize(self, scope: Scope, path: str, client: str) -> str | None:
        """The cluster the request may write to (None: each delivery's own); 401/403 before anything is read."""
        key = header(scope, ACCESS_KEY)
        if not key:
            quiet.warning("firehose-no-key", "refused a Firehose request without an access key from %s", client)
            raise RequestError(401, "missing X-Amz-Firehose-Access-Key", hint="set the stream's access key")
        entry = self.keys.match(key)
        if entry is None:
            quiet.warning("firehose-bad-key", "refused a Firehose request with a wrong access key from %s", client)
            raise RequestError(403, "the access key is not valid")
        named = self._named_cluster(path)
        if entry.cluster is not None and named not in (None, entry.cluster):
            raise RequestError(403, f"this access key may only write to cluster {entry.cluster!r}")
        return named or entry.cluster

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        content_type = (header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            raise RequestError(415, "Content-Type must be application/json")
        encoding = (header(scope, b"content-encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            raise RequestError(415, f"Content-Encoding {encoding[:40]} is not supported (use gzip or none)")
        length = header(scope, b"content-length")
        declared = int(length) if length is not None and length.strip().isdigit() else None
        return await read_body(receive, self.limits.max_body_bytes, declared)

    def _decode(self, body: bytes, gzipped: bool, source: str) -> FirehoseRequest:
        limit = self.limits.max_body_bytes
        try:
            if gzipped:
                body = gunzip(body, limit=limit, source=source)
            return decode_firehose(body, source=source, max_bytes=limit)
        except InflateLimitError:
            raise too_large("the request's decompressed records", limit) from None
        except GzipError as error:
            raise RequestError(400, f"the gzip body is unreadable: {error.message}") from None
        except NotJsonError as error:
            raise RequestError(400, f"the body is {error.message}") from None
        except IntakeError as error:
            raise RequestError(400, error.message, hint=error.hint) from None

    async def _store(self, send: Send, request: FirehoseRequest, clusters: list[str], source: str) -> None:
        try:
            await self._deliver(request.batches, clusters, source)
        except (StoreError, OSError) as error:
            self._last_failure = f"the last request could not be made durable: {error}"
            self.stats.failed(self._last_failure)
            log.error("answering 503 to Firehose request %s: %s", request.request_id[:64], error)
            await self._answer(send, request.request_id, 503, "could not store the records durably; retry")
            return
        newest: float | None = None
        for batch in request.batches:
            if batch.events or batch.rejected:
                age = event_age(batch)
                newest = age if newest is None or age is None else min(newest, age)
        self._last_failure = None
        self.stats.succeeded()
        if newest is not None:
            self.stats.lag_seconds = newest
        await self._answer(send, request.request_id, 200, "")

    async def _answer(
        self, send: Send, request_id: str, status: int, error: str, headers: list[tuple[str, str]] | None = None
    ) -> None:
        """Firehose's response: `{"requestId", "timestamp"}` (with `errorMessage` unless 200), as JSON."""
        document: dict[str, object] = {"requestId": request_id, "timestamp": int(time.time() * 1000)}
        if status != 200:
            document["errorMessage"] = error
        await self._send_json(send, status, document, headers)
