"""An ASGI middleware that audits any ASGI app (Starlette, FastAPI, ...) as kube-apiserver audits itself.

Per HTTP request, like the apiserver's `WithAuditInit` and `WithAudit` filters: the `Audit-ID`
request header (or a new UUID) is echoed on the response; request info comes from the method and
URL (`emit.requestinfo`, or the `request_info` given), the user from a pluggable resolver; the policy
picks the level. Events go to the backends at RequestReceived (a backend refusing it fails the request
with 500, which only `blocking-strict` backends do), ResponseStarted (long-running requests),
ResponseComplete, or Panic when the app raises.

Bodies follow `emit.exchange`. At Request and RequestResponse the request body is read before the app
runs (up to `max_body_bytes`, then the rest streams through) and replayed to it, so the event holds what
the request carried whether or not the app reads it, as the apiserver's does; long-running requests are
only observed as the app reads them. Backends that may block (anything not buffered) are called in a
worker thread, so a slow receiver never stalls the event loop, and in batch mode never delays a
response. With `manage_backends`, ASGI lifespan startup runs the backends and shutdown flushes them.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import quote

import anyio

from kubetrail.emit.backend import Backend
from kubetrail.emit.buffered import Buffered
from kubetrail.emit.builder import EventBuilder, RequestRecorder
from kubetrail.emit.exchange import (
    ANONYMOUS,
    DEFAULT_MAX_BODY_BYTES,
    HEADER_AUDIT_ID,
    BodyCapture,
    Exchange,
    client_ips,
    internal_error_body,
)
from kubetrail.emit.requestinfo import RequestInfo, RequestInfoError, resolve_request_info
from kubetrail.emit.truncate import Truncating
from kubetrail.emit.union import Union
from kubetrail.model.event import Event, Level, UserInfo
from kubetrail.model.policy import Policy
from kubetrail.policy.evaluate import CompiledPolicy
from kubetrail.policy.load import LoadedPolicy

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
UserResolver = Callable[[Scope], UserInfo | Awaitable[UserInfo | None] | None]
"""Who made a request, from its ASGI scope (sync or async); None means the anonymous user."""
RequestInfoResolver = Callable[[str, str], RequestInfo]
"""Request info from the method and the URL (path and query as sent)."""

SCOPE_KEY = "kubetrail.audit"
"""The key of an audited request's `RequestRecorder` in its ASGI scope (or WSGI environ), for `annotate`."""

__all__ = [
    "ANONYMOUS",
    "DEFAULT_MAX_BODY_BYTES",
    "HEADER_AUDIT_ID",
    "SCOPE_KEY",
    "AuditMiddleware",
    "RequestInfoResolver",
    "UserResolver",
    "anonymous_user",
    "as_compiled",
    "request_url",
    "single_backend",
    "source_ips",
]

log = logging.getLogger("kubetrail.emit")


def anonymous_user(scope: Any) -> UserInfo:
    """The default resolver: every request is the apiserver's anonymous user."""
    return ANONYMOUS


_WANTED_HEADERS = frozenset({b"audit-id", b"user-agent", b"x-forwarded-for", b"x-real-ip"})


def _headers(scope: Scope) -> dict[bytes, str]:
    """The request headers the audit needs, read in one pass (the first value of each)."""
    found: dict[bytes, str] = {}
    for key, value in scope.get("headers") or ():
        name = bytes(key).lower()
        if name in _WANTED_HEADERS and name not in found:
            found[name] = bytes(value).decode("latin-1")
    return found


def source_ips(scope: Scope, headers: dict[bytes, str] | None = None) -> list[str]:
    """Client addresses as the apiserver lists them: X-Forwarded-For, then X-Real-Ip, then the peer."""
    headers = _headers(scope) if headers is None else headers
    client = scope.get("client")
    peer = str(client[0]) if client else None
    return client_ips(headers.get(b"x-forwarded-for"), headers.get(b"x-real-ip"), peer)


def request_url(scope: Scope) -> str:
    """Path and query as sent on the wire (percent-encoding kept), which request info resolves."""
    raw = scope.get("raw_path")
    path = bytes(raw).decode("latin-1") if raw else quote(scope.get("path", "/") or "/", safe="/:@!$&'()*+,;=-._~")
    query = bytes(scope.get("query_string") or b"").decode("latin-1")
    return f"{path}?{query}" if query else path


@functools.lru_cache(maxsize=8192)
def _request_info(method: str, url: str) -> RequestInfo:
    """Request info is a pure function of method and URL: repeated URLs are resolved once."""
    return resolve_request_info(method, url)


def as_compiled(policy: CompiledPolicy | Policy | LoadedPolicy) -> CompiledPolicy:
    """A policy ready to evaluate, from a loaded, parsed or compiled one."""
    if isinstance(policy, CompiledPolicy):
        return policy
    return CompiledPolicy(policy.policy if isinstance(policy, LoadedPolicy) else policy)


def single_backend(backends: Backend | Sequence[Backend]) -> Backend:
    """One backend, or a Union of several."""
    if isinstance(backends, Sequence):
        return backends[0] if len(backends) == 1 else Union(backends)
    return backends


def never_blocks(backend: Backend) -> bool:
    """True when `process_events` only enqueues (batch mode), so it may run on the event loop."""
    if isinstance(backend, Buffered):
        return True
    if isinstance(backend, Truncating):
        return never_blocks(backend.delegate)
    if isinstance(backend, Union):
        return all(never_blocks(inner) for inner in backend.backends)
    return False


def _content_type(headers: Any) -> bytes | None:
    for key, value in headers or ():
        if bytes(key).lower() == b"content-type":
            return bytes(value)
    return None


class AuditMiddleware:
    """Wrap an ASGI `app`; audit its HTTP requests under `policy` into `backends`.

    Args:
        app: the ASGI application (Starlette, FastAPI, ... or a plain ASGI callable).
        policy: an audit policy, as loaded by `load_policy`, parsed, or compiled.
        backends: where events go; several are combined into a `Union`.
        user_resolver: who made a request, from its scope; the default is `system:anonymous`.
        builder: the clock and audit ID source (a fixed one makes events reproducible in tests).
        max_body_bytes: the largest body recorded; a larger one is left out and the event annotated as truncated.
        manage_backends: run the backends at lifespan startup and flush them at shutdown.
        request_info: request info from method and URL; the default is kube-apiserver's resolver.
    """

    def __init__(
        self,
        app: ASGIApp,
        policy: CompiledPolicy | Policy | LoadedPolicy,
        backends: Backend | Sequence[Backend],
        user_resolver: UserResolver = anonymous_user,
        *,
        builder: EventBuilder | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        manage_backends: bool = True,
        request_info: RequestInfoResolver | None = None,
    ) -> None:
        self.app = app
        self.policy = as_compiled(policy)
        self.backend = single_backend(backends)
        self.user_resolver = user_resolver
        self.builder = builder or EventBuilder()
        self.max_body_bytes = max_body_bytes
        self.manage_backends = manage_backends
        self.request_info: RequestInfoResolver = request_info or _request_info
        self._inline = never_blocks(self.backend)
        self._running = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan" and self.manage_backends:
            await self._lifespan(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # --- backends ---------------------------------------------------------------------------

    def run(self) -> None:
        """Start the backends (done at lifespan startup when `manage_backends`)."""
        if not self._running:
            self._running = True
            self.backend.run()

    def shutdown(self) -> None:
        """Flush and stop the backends (done at lifespan shutdown when `manage_backends`)."""
        if self._running:
            self._running = False
            self.backend.shutdown()

    async def _process(self, events: list[Event]) -> bool:
        if not events:
            return True
        try:
            if self._inline:
                return self.backend.process_events(events)
            return await anyio.to_thread.run_sync(self.backend.process_events, events)
        except Exception:
            log.exception("audit backend %s failed on %d event(s)", self.backend.name(), len(events))
            return False

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def receive_wrapper() -> Message:
            message = await receive()
            if message.get("type") == "lifespan.startup":
                self.run()
            return message

        async def send_wrapper(message: Message) -> None:
            if message.get("type") in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await anyio.to_thread.run_sync(self.shutdown)
            await send(message)

        await self.app(scope, receive_wrapper, send_wrapper)

    # --- requests ---------------------------------------------------------------------------

    async def _resolve_user(self, scope: Scope) -> UserInfo:
        user = self.user_resolver(scope)
        if inspect.isawaitable(user):
            user = await user
        return user if isinstance(user, UserInfo) else ANONYMOUS

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        audit_id = headers.get(b"audit-id") or self.builder.new_audit_id()
        id_header = (HEADER_AUDIT_ID.encode(), audit_id.encode("latin-1", "replace"))

        async def send_with_id(message: Message) -> None:
            if message.get("type") == "http.response.start":
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        url = request_url(scope)
        method = str(scope.get("method", "GET"))
        try:
            info = self.request_info(method, url)
        except RequestInfoError as error:
            await _internal_error(send_with_id, url, f"failed to create RequestInfo: {error}")
            return
        user = await self._resolve_user(scope)
        recorder = self.builder.request(
            method=method,
            url=url,
            user=user,
            policy=self.policy,
            info=info,
            source_ips=source_ips(scope, headers),
            user_agent=headers.get(b"user-agent", ""),
            audit_id=audit_id,
        )
        if recorder.level is Level.NONE:
            await self.app(scope, receive, send_with_id)
            return
        scope[SCOPE_KEY] = recorder
        if not await self._process(recorder.received()):
            await _internal_error(send_with_id, url, "failed to store audit event")
            return
        await self._run_audited(scope, receive, send_with_id, recorder)

    async def _run_audited(self, scope: Scope, receive: Receive, send: Send, recorder: RequestRecorder) -> None:
        exchange = Exchange(recorder, self.max_body_bytes)
        capture = exchange.request
        if exchange.reads_ahead and capture is not None:
            receive = await _read_ahead(receive, capture)
        elif capture is not None:
            observed = receive

            async def receive_observed() -> Message:
                message = await observed()
                if message.get("type") == "http.request":
                    capture.add(message.get("body", b""))
                return message

            receive = receive_observed

        async def send_wrapper(message: Message) -> None:
            kind = message.get("type")
            if kind == "http.response.start":
                status = int(message.get("status", 200))
                await self._process(exchange.start(status, _content_type(message.get("headers"))))
            elif kind == "http.response.body":
                exchange.add_response(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as error:
            await self._process(exchange.panic(error))
            raise
        await self._process(exchange.complete())


async def _read_ahead(receive: Receive, capture: BodyCapture) -> Receive:
    """Read the request body into `capture` (up to its limit), then a `receive` that replays what was read
    and passes the rest of the stream through: the app sees the same messages either way."""
    read: deque[Message] = deque()
    while True:
        message = await receive()
        read.append(message)
        if message.get("type") != "http.request":
            break
        capture.add(message.get("body", b""))
        if not message.get("more_body", False) or capture.overflow:
            break

    async def replay() -> Message:
        if read:
            return read.popleft()
        return await receive()

    return replay


async def _internal_error(send: Send, url: str, reason: str) -> None:
    """The apiserver's `responsewriters.InternalError`: plain text 500 naming the request URI."""
    body = internal_error_body(url, reason)
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"x-content-type-options", b"nosniff"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
