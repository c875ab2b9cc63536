"""GKE, pushed: a Pub/Sub push subscription delivering a Cloud Logging sink's messages to serve's receiver port.

Cloud Logging sink (the cluster's audit entries) → Pub/Sub topic → push subscription → `POST /pubsub/<cluster>`
(or `POST /pubsub`: each entry's cluster from its `resource.labels.cluster_name`).

As Google documents push delivery: one message per request, the body the JSON envelope
`{"message": {"data": "<base64>", "attributes", "messageId", "publishTime"}, "subscription"}` (or, for a
subscription with `--push-no-wrapper`, the message data alone), with `Authorization: Bearer <OIDC token>` signed
by Google for the subscription's service account. Pub/Sub counts 102, 200, 201, 202 and 204 as an
acknowledgement; anything else, or no answer within the ack deadline, is redelivered with backoff.

Guarantees, the webhook's: the token is verified (oidc.py) before the body is read, a missing or invalid one is
401 and an account not allowed is 403, and nothing is read or written for them; the message data (one LogEntry)
goes through the GKE intake (`intake.gke`, the same conversion as `kubetrail ingest` of an export); 200 is sent
only after its events are in the WAL and fsynced; 503 when that fails, so Pub/Sub redelivers and the store's
dedup absorbs what was already in. A message that is not a Kubernetes audit entry is acknowledged (skipped or,
when it is not a LogEntry at all, kept in the dead letters), so it is not redelivered forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from kubetrail.collect.limits import ClientDisconnected, Limits, RequestError, read_body
from kubetrail.collect.metrics import Registry
from kubetrail.intake import IntakeError
from kubetrail.intake.gke import decode_messages, decode_push
from kubetrail.logs import ThrottledLog
from kubetrail.model import parse_microtime
from kubetrail.pipeline import Pipeline
from kubetrail.sources.oidc import OidcVerifier, TokenError
from kubetrail.sources.push import App, PushEndpoint, Receive, Scope, Send, header
from kubetrail.store import StoreError

log = logging.getLogger(__name__)
quiet = ThrottledLog(log)

PATH = "/pubsub"


class PubSubPushEndpoint(PushEndpoint):
    """ASGI middleware: `POST /pubsub[/<cluster>]` is handled here, every other request goes to `app`."""

    path = PATH

    def __init__(
        self,
        app: App,
        pipeline: Pipeline,
        verifier: OidcVerifier,
        *,
        limits: Limits | None = None,
        metrics: Registry | None = None,
        accepting: Callable[[], bool] = lambda: True,
        name: str = "pubsub-push",
    ) -> None:
        super().__init__(app, pipeline, limits=limits, metrics=metrics, accepting=accepting, name=name)
        self.verifier = verifier

    async def _refuse(self, scope: Scope, send: Send, status: int, error: str, headers: list[tuple[str, str]]) -> None:
        await self._answer(send, status, error, "", headers)

    async def _post(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        client = (scope.get("client") or ("?", 0))[0]
        source = f"pubsub-push {client} {path}"
        message_id = ""
        try:
            cluster = await self._authorize(scope, path, client)
            if not self.accepting():
                raise RequestError(503, "shutting down; retry")
            length = header(scope, b"content-length")
            declared = int(length) if length is not None and length.strip().isdigit() else None
            body = await read_body(receive, self.limits.max_body_bytes, declared)
            try:
                message = decode_push(body, source=source)
            except IntakeError as error:
                raise RequestError(400, error.message) from None
            message_id = message.message_id[:256]
            batches = decode_messages([(message_id, message.data)], source)
            clusters = [self._cluster_of(batch.cluster, cluster, "the entry") for batch in batches]
        except ClientDisconnected:
            return
        except RequestError as error:
            headers = self._failed(error)
            await self._answer(send, error.status, error.message, message_id, headers)
            return
        try:
            await self._deliver(batches, clusters, source)
        except (StoreError, OSError) as error:
            self._last_failure = f"the last message could not be made durable: {error}"
            self.stats.failed(self._last_failure)
            log.error("answering 503 to Pub/Sub message %s: %s", message_id[:64], error)
            await self._answer(send, 503, "could not store the message durably; retry", message_id)
            return
        self._last_failure = None
        self.stats.succeeded()
        if message.publish_time:
            try:
                published = parse_microtime(message.publish_time.replace("Z", "+00:00")).timestamp()
                self.stats.lag_seconds = max(0.0, time.time() - published)
            except ValueError:
                pass
        await self._answer(send, 200, "", message_id)

    async def _authorize(self, scope: Scope, path: str, client: str) -> str | None:
        """The cluster named by the path (None: each entry's own); 401/403 before the body is read."""
        try:
            # off the event loop: a token naming a new key fetches the keys
            await asyncio.to_thread(self.verifier.verify, header(scope, b"authorization"))
        except TokenError as error:
            if error.status >= 500:
                self._last_failure = error.message
                raise RequestError(503, error.message) from None
            quiet.warning(f"pubsub-{error.status}", "refused a Pub/Sub push from %s: %s", client, error.message)
            raise RequestError(error.status, error.message) from None
        return self._named_cluster(path)

    async def _answer(
        self, send: Send, status: int, error: str, message_id: str, headers: list[tuple[str, str]] | None = None
    ) -> None:
        """A small JSON answer (Pub/Sub reads only the status; the text is for whoever reads its logs)."""
        document: dict[str, object] = {"messageId": message_id}
        if status != 200:
            document["error"] = error
        await self._send_json(send, status, document, headers)
