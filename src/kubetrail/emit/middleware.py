"""An ASGI middleware that audits any ASGI app (Starlette, FastAPI, ...) as kube-apiserver audits itself.

Per HTTP request, like the apiserver's `WithAuditInit` and `WithAudit` filters: the `Audit-ID`
request header (or a new UUID) is echoed on the response; request info comes from the method and
URL (`emit.requestinfo`), the user from a pluggable resolver; the policy picks the level. Events go
to the backends at RequestReceived (a backend refusing it fails the request with 500, which only
`blocking-strict` backends do), ResponseStarted (long-running requests), ResponseComplete, or Panic
when the app raises. Bodies are captured only when the level needs them (`Request`: the request,
`RequestResponse`: also the response), only for resource requests, only valid JSON, and only up
to `max_body_bytes` (a larger body is left out, never cut). Backends that may block (anything not
buffered) are called in a worker thread, so a slow receiver never stalls the event loop, and in
batch mode never delays a response. With `manage_backends`, ASGI lifespan startup runs the
backends and shutdown flushes them.
"""

from __future__ import annotations

import functools
import inspect
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any
from urllib.parse import quote

import anyio
import msgspec

from kubetrail.emit.backend import Backend
from kubetrail.emit.buffered import Buffered
from kubetrail.emit.builder import EventBuilder, RequestRecorder, request_uri
from kubetrail.emit.requestinfo import RequestInfo, RequestInfoError, resolve_request_info
from kubetrail.emit.truncate import Truncating
from kubetrail.emit.union import Union
from kubetrail.model.event import Event, Level, UserInfo
from kubetrail.model.policy import Policy
from kubetrail.policy.evaluate import CompiledPolicy

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
UserResolver = Callable[[Scope], UserInfo | Awaitable[UserInfo | None] | None]

HEADER_AUDIT_ID = "audit-id"
SCOPE_KEY = "kubetrail.audit"
DEFAULT_MAX_BODY_BYTES = 1 << 20
ANONYMOUS = UserInfo(username="system:anonymous", groups=["system:unauthenticated"])

log = logging.getLogger("kubetrail.emit")

_validate_json = msgspec.json.Decoder()


def anonymous_user(scope: Scope) -> UserInfo:
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


@functools.lru_cache(maxsize=4096)
def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip().strip("[]")))
    except ValueError:
        return None


def source_ips(scope: Scope, headers: dict[bytes, str] | None = None) -> list[str]:
    """Client addresses as the apiserver lists them: X-Forwarded-For, then X-Real-Ip, then the peer."""
    headers = _headers(scope) if headers is None else headers
    found: list[str] = []
    forwarded = headers.get(b"x-forwarded-for")
    if forwarded:
        found += [ip for part in forwarded.split(",") if (ip := _ip(part)) is not None]
    real = headers.get(b"x-real-ip")
    if real:
        ip = _ip(real)
        if ip is not None and ip not in found:
            found.append(ip)
    client = scope.get("client")
    peer = _ip(str(client[0])) if client else None
    if peer is not None and (not found or found[-1] != peer):
        found.append(peer)
    return found


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


def _never_blocks(backend: Backend) -> bool:
    """True when `process_events` only enqueues (batch mode), so it may run on the event loop."""
    if isinstance(backend, Buffered):
        return True
    if isinstance(backend, Truncating):
        return _never_blocks(backend.delegate)
    if isinstance(backend, Union):
        return all(_never_blocks(inner) for inner in backend.backends)
    return False


def _json_body(chunks: list[bytes]) -> msgspec.Raw | None:
    body = b"".join(chunks)
    if not body:
        return None
    try:
        _validate_json.decode(body)
    except msgspec.DecodeError:
        return None
    return msgspec.Raw(body)


class _Capture:
    """Collects a body up to a limit; gives it up (never a truncated document) beyond."""

    __slots__ = ("chunks", "limit", "overflow", "size", "taken")

    def __init__(self, limit: int) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.overflow = False
        self.taken = False

    def add(self, chunk: bytes) -> None:
        if self.overflow or not chunk:
            return
        self.size += len(chunk)
        if self.size > self.limit:
            self.overflow = True
            self.chunks = []
            return
        self.chunks.append(bytes(chunk))

    def body(self) -> msgspec.Raw | None:
        return None if self.overflow else _json_body(self.chunks)

    def take(self) -> msgspec.Raw | None:
        """The body, the first time only (it is logged once)."""
        if self.taken:
            return None
        self.taken = True
        return self.body()


class AuditMiddleware:
    """Wrap `app`; audit its HTTP requests under `policy` into `backends`; users come from `user_resolver`."""

    def __init__(
        self,
        app: ASGIApp,
        policy: CompiledPolicy | Policy,
        backends: Backend | Sequence[Backend],
        user_resolver: UserResolver = anonymous_user,
        *,
        builder: EventBuilder | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        manage_backends: bool = True,
    ) -> None:
        self.app = app
        self.policy = policy if isinstance(policy, CompiledPolicy) else CompiledPolicy(policy)
        if isinstance(backends, Sequence):
            self.backend: Backend = backends[0] if len(backends) == 1 else Union(backends)
        else:
            self.backend = backends
        self.user_resolver = user_resolver
        self.builder = builder or EventBuilder()
        self.max_body_bytes = max_body_bytes
        self.manage_backends = manage_backends
        self._inline = _never_blocks(self.backend)
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
            info = _request_info(method, url)
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
        resource = recorder.info.is_resource_request
        request_capture = _Capture(self.max_body_bytes) if resource and recorder.level.at_least(Level.REQUEST) else None
        wants_response = resource and recorder.level is Level.REQUEST_RESPONSE and not recorder.long_running
        response_capture: _Capture | None = None
        status = 200
        started = False

        async def receive_wrapper() -> Message:
            message = await receive()
            if request_capture is not None and message.get("type") == "http.request":
                request_capture.add(message.get("body", b""))
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started, response_capture
            kind = message.get("type")
            if kind == "http.response.start":
                started = True
                status = int(message.get("status", 200))
                self._log_request_body(recorder, request_capture)
                if wants_response and _is_json(message.get("headers", ())):
                    response_capture = _Capture(self.max_body_bytes)
                await self._process(recorder.started(status))
            elif kind == "http.response.body" and response_capture is not None:
                response_capture.add(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except Exception as error:
            self._log_request_body(recorder, request_capture)
            await self._process(recorder.panic(error))
            raise
        self._log_request_body(recorder, request_capture)
        body = response_capture.body() if response_capture is not None else None
        if body is not None:
            recorder.log_response(status, body)
        await self._process(recorder.complete(status if started else None))

    @staticmethod
    def _log_request_body(recorder: RequestRecorder, capture: _Capture | None) -> None:
        body = capture.take() if capture is not None else None
        if body is not None:
            recorder.log_request_body(body)


def _is_json(headers: Sequence[tuple[bytes, bytes]] | Mapping[bytes, bytes]) -> bool:
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if bytes(key).lower() == b"content-type":
            kind = bytes(value).split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return False


async def _internal_error(send: Send, url: str, reason: str) -> None:
    """The apiserver's `responsewriters.InternalError`: plain text 500 naming the request URI."""
    body = f"Internal Server Error: {json.dumps(request_uri(url))}: {reason}\n".encode()
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
