"""The webhook receiver: an ASGI app that kube-apiserver's webhook audit backend POSTs EventLists to.

`POST /audit/{cluster}` and `POST /k8s-audit` (Falco's path; the cluster comes from the sender's token or
certificate, else the default) accept an Event, an EventList or a JSON array of either, optionally gzip'd.
Every item is validated: invalid ones go to the store's dead-letter file with the reason, valid ones are
appended, and the answer is 200 only once the batch is fsynced in the WAL; 503 (with `Retry-After`) when it
cannot be made durable, so the sender retries and dedup makes the retry safe. Also `GET /healthz`,
`GET /readyz` and `GET /metrics`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from kubetrail.collect.auth import Authenticator, Identity
from kubetrail.collect.limits import (
    DEFAULT_MAX_EVENT_BYTES,
    ClientDisconnected,
    Limits,
    RequestError,
    gunzip,
    read_body,
    too_large,
)
from kubetrail.collect.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from kubetrail.collect.metrics import Registry
from kubetrail.model import Event, EventDecodeError, decode_event
from kubetrail.model.event import API_VERSION_V1, SUPPORTED_EVENT_API_VERSIONS
from kubetrail.store import Store, StoreError, check_cluster

log = logging.getLogger(__name__)

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


class _Envelope(msgspec.Struct):
    """Just enough of a document to tell an EventList from an Event (everything else is skipped)."""

    kind: str = ""
    apiVersion: str = ""
    items: msgspec.Raw = msgspec.Raw()


_top_decoder = msgspec.json.Decoder(list[msgspec.Raw] | _Envelope)
_envelope_decoder = msgspec.json.Decoder(_Envelope)
_items_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_json_checker = msgspec.json.Decoder(msgspec.Raw)
_event_decoder = msgspec.json.Decoder(Event)
_encoder = msgspec.json.Encoder()


@dataclass
class Payload:
    """A request body split into valid events (with their JSON) and refused items (with the reason)."""

    events: list[Event] = field(default_factory=list)
    raws: list[bytes | None] = field(default_factory=list)
    rejected: list[tuple[bytes, str]] = field(default_factory=list)

    @property
    def received(self) -> int:
        return len(self.events) + len(self.rejected)


def split_body(body: bytes, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> Payload:
    """Validate every item of an Event / EventList / JSON array body.

    Raises RequestError 400 when the body is not JSON at all, 413 when one event exceeds `max_event_bytes`.
    """
    payload = Payload()
    try:
        top = _top_decoder.decode(body)
    except msgspec.ValidationError as error:
        try:
            _json_checker.decode(body)
        except msgspec.DecodeError as syntax:
            raise RequestError(400, f"the body is not JSON: {syntax}") from None
        _event(payload, body, "body", max_event_bytes, fallback=f"not an audit Event or EventList: {error}")
        return payload
    except msgspec.DecodeError as error:
        raise RequestError(400, f"the body is not JSON: {error}") from None
    if isinstance(top, list):
        for index, item in enumerate(top):
            raw = bytes(item)
            if b'"EventList"' in raw:
                _document(payload, raw, None, f"item {index}", max_event_bytes)
            else:
                _event(payload, raw, f"item {index}", max_event_bytes)
    else:
        _document(payload, body, top, "body", max_event_bytes)
    return payload


def _document(payload: Payload, raw: bytes, envelope: _Envelope | None, where: str, max_event_bytes: int) -> None:
    if envelope is None:
        try:
            envelope = _envelope_decoder.decode(raw)
        except msgspec.DecodeError as error:
            _event(payload, raw, where, max_event_bytes, fallback=f"not an audit Event or EventList: {error}")
            return
    if envelope.kind != "EventList":
        _event(payload, raw, where, max_event_bytes)
        return
    if envelope.apiVersion and envelope.apiVersion not in SUPPORTED_EVENT_API_VERSIONS:
        payload.rejected.append(
            (raw, f"{where}: apiVersion {envelope.apiVersion!r} is not an audit event version - at `$.apiVersion`")
        )
        return
    if not envelope.items:
        return
    try:
        items = _items_decoder.decode(envelope.items)
    except msgspec.DecodeError as error:
        payload.rejected.append((raw, f"{where}: {error} - at `$.items`"))
        return
    _events(payload, items, f"{where} items", max_event_bytes)


def _events(payload: Payload, items: list[msgspec.Raw], where: str, max_event_bytes: int) -> None:
    """The hot loop: one decode per item; the location text is only built for an item that fails."""
    events, raws = payload.events, payload.raws
    decode = _event_decoder.decode
    for index, item in enumerate(items):
        raw = bytes(item)
        if len(raw) > max_event_bytes:
            raise too_large(f"{where}[{index}] ({len(raw)} bytes)", max_event_bytes)
        try:
            event = decode(raw)
        except msgspec.DecodeError:
            _event(payload, raw, f"{where}[{index}]", max_event_bytes)
            continue
        if event.apiVersion != API_VERSION_V1:
            _event(payload, raw, f"{where}[{index}]", max_event_bytes)
            continue
        events.append(event)
        raws.append(raw)


def _event(payload: Payload, raw: bytes, where: str, max_event_bytes: int, fallback: str = "") -> None:
    if len(raw) > max_event_bytes:
        raise too_large(f"{where} ({len(raw)} bytes)", max_event_bytes)
    if fallback:
        payload.rejected.append((raw, f"{where}: {fallback}"))
        return
    try:
        event = decode_event(raw, source=where)
    except EventDecodeError as error:
        payload.rejected.append((raw, f"{where}: {error.message}"))
        return
    payload.events.append(event)
    payload.raws.append(raw)


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
        store: Store,
        *,
        default_cluster: str = DEFAULT_CLUSTER,
        limits: Limits | None = None,
        auth: Authenticator | None = None,
        metrics: Registry | None = None,
    ) -> None:
        self.store = store
        self.default_cluster = check_cluster(default_cluster)
        self.limits = limits or Limits()
        self.auth = auth or Authenticator()
        self.metrics = metrics or Registry()
        self.accepting = True
        self._last_failure: str | None = None

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
        if not os.access(self.store.layout.wal_dir, os.W_OK):
            return "the store's WAL directory is not writable"
        return self._last_failure

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
        client = scope.get("client") or ("?", 0)
        try:
            identity = self.auth.authenticate(scope)
            if self.auth.required and identity is None:
                log.warning("refused an unauthenticated request from %s to %s", client[0], path)
                raise RequestError(401, "authentication required", hint="send a bearer token or a client certificate")
            cluster = self._cluster(identity, from_path)
            if not self.accepting:
                raise RequestError(503, "shutting down; retry")
            body = await self._body(scope, receive)
            self.metrics.bytes.inc(len(body), cluster)
            gzipped = (_header(scope, b"content-encoding") or "").strip().lower() == "gzip"
            if len(body) < INLINE_BYTES and not gzipped:
                payload = split_body(body, self.limits.max_event_bytes)
            else:
                payload = await asyncio.to_thread(self._decode, body, gzipped)
        except ClientDisconnected:
            return
        except RequestError as error:
            headers = [("www-authenticate", "Bearer")] if error.status == 401 else []
            if error.status == 503:
                headers.append(("retry-after", str(RETRY_AFTER_SECONDS)))
            await self._answer(send, path, error.status, error.message, headers=headers, hint=error.hint)
            return
        await self._store(send, path, cluster, payload, source=f"webhook {client[0]} {path}")

    def _decode(self, body: bytes, gzipped: bool) -> Payload:
        """Inflate and split a large body off the event loop, so that other requests keep being served."""
        if gzipped:
            body = gunzip(body, self.limits.max_body_bytes)
        return split_body(body, self.limits.max_event_bytes)

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        content_type = (_header(scope, b"content-type") or "").lower()
        if "application/json" not in content_type:
            raise RequestError(415, f"Content-Type must be application/json, not {content_type or 'missing'}")
        encoding = (_header(scope, b"content-encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            raise RequestError(415, f"Content-Encoding {encoding} is not supported (use gzip or none)")
        length = _header(scope, b"content-length")
        declared = int(length) if length is not None and length.strip().isdigit() else None
        return await read_body(receive, self.limits.max_body_bytes, declared)

    async def _store(self, send: Send, path: str, cluster: str, payload: Payload, source: str) -> None:
        metrics = self.metrics
        metrics.received.inc(payload.received, cluster)
        started = time.perf_counter()
        metrics.queue.add(1)
        metrics.pending.add(len(payload.events))
        try:
            result = await self.store.append_async(cluster, payload.events, payload.raws)
            if payload.rejected:
                await asyncio.to_thread(self._dead_letter, cluster, payload.rejected, source)
        except (StoreError, OSError) as error:
            self._last_failure = f"the last batch could not be made durable: {error}"
            log.error("answering 503 for %d events of %s: %s", payload.received, cluster, error)
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
            metrics.pending.add(-len(payload.events))
        self._last_failure = None
        metrics.ack.observe(time.perf_counter() - started)
        metrics.accepted.inc(result.accepted, cluster)
        metrics.duplicates.inc(result.duplicates, cluster)
        metrics.rejected.inc(len(payload.rejected), cluster)
        if payload.rejected:
            log.warning(
                "%s: %d invalid events of %s went to the dead-letter file", source, len(payload.rejected), cluster
            )
        if not payload.events and payload.rejected:
            first = payload.rejected[0][1]
            await self._answer(send, path, 422, f"no valid audit events ({len(payload.rejected)} refused): {first}")
            return
        summary = {
            "cluster": cluster,
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": len(payload.rejected),
        }
        metrics.requests.inc(1, "/audit" if path.startswith(AUDIT_PREFIX) else path, "200")
        await _respond(send, 200, _encoder.encode(summary) + b"\n", "application/json")

    def _dead_letter(self, cluster: str, rejected: list[tuple[bytes, str]], source: str) -> None:
        for raw, reason in rejected:
            self.store.dead_letter(source=source, reason=reason, raw=raw, cluster=cluster)
        self.store.dead_letters.flush()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
