"""The audit middleware for WSGI apps (Flask, Django, ...): the ASGI middleware's behaviour under PEP 3333.

Same events, levels, bodies and `Audit-ID` header as `emit.middleware`: the request body is read from
`wsgi.input` before the app runs (up to `max_body_bytes`; only what `CONTENT_LENGTH` announces, or the whole
stream when the server marks it `wsgi.input_terminated`) and replayed to the app, the rest streaming through.
ResponseComplete is written once the response iterable has been sent whole (or when the server closes it
early), so a streamed response is recorded after its last chunk. Backends are called inline (WSGI workers are
threads or processes); with `manage_backends` they are run at construction and flushed at interpreter exit
(or by `shutdown()`).
"""

from __future__ import annotations

import atexit
import io
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import quote

from kubetrail.emit.backend import Backend
from kubetrail.emit.builder import EventBuilder
from kubetrail.emit.exchange import (
    ANONYMOUS,
    DEFAULT_MAX_BODY_BYTES,
    BodyCapture,
    Exchange,
    client_ips,
    internal_error_body,
)
from kubetrail.emit.middleware import SCOPE_KEY, RequestInfoResolver, as_compiled, single_backend
from kubetrail.emit.requestinfo import RequestInfoError, resolve_request_info
from kubetrail.model.event import Event, Level, UserInfo
from kubetrail.model.policy import Policy
from kubetrail.policy.evaluate import CompiledPolicy
from kubetrail.policy.load import LoadedPolicy

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
Write = Callable[[bytes], object]


class StartResponse(Protocol):
    """PEP 3333's `start_response` callable."""

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None, /) -> Write: ...


WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
WSGIUserResolver = Callable[[Environ], UserInfo | None]
"""Who made a request, from its WSGI environ; None means the anonymous user."""

__all__ = ["WSGIApp", "WSGIAuditMiddleware", "WSGIUserResolver", "request_url"]

log = logging.getLogger("kubetrail.emit")

_CHUNK = 64 << 10


def _anonymous(environ: Environ) -> UserInfo:
    return ANONYMOUS


def request_url(environ: Environ) -> str:
    """Path and query as sent (the server's raw request URI when it gives one)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw)
    path = quote(
        (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1").decode("utf-8", "replace")
        or "/",
        safe="/:@!$&'()*+,;=-._~",
    )
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


class _Replayed(io.RawIOBase):
    """`wsgi.input` again: the bytes read ahead, then the rest of the original stream."""

    def __init__(self, head: bytes, rest: Any) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        if self._head:
            size = min(len(target), len(self._head))
            target[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read(len(target))
        target[: len(data)] = data
        return len(data)


def _read_ahead(environ: Environ, capture: BodyCapture) -> None:
    """Read the body into `capture` (up to its limit) and put a stream that replays it in `wsgi.input`."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return
    try:
        remaining: int | None = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        remaining = 0
    if not remaining and environ.get("wsgi.input_terminated"):
        remaining = None  # chunked: read to the end
    chunks: list[bytes] = []
    while (remaining is None or remaining > 0) and not capture.overflow:
        data = stream.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
        if not data:
            break
        chunks.append(data)
        capture.add(data)
        if remaining is not None:
            remaining -= len(data)
    if chunks:
        environ["wsgi.input"] = io.BufferedReader(_Replayed(b"".join(chunks), stream))


class WSGIAuditMiddleware:
    """Wrap a WSGI `app`; audit its requests under `policy` into `backends` (see `AuditMiddleware`).

    Args:
        app: the WSGI application (`flask_app.wsgi_app`, Django's `get_wsgi_application()`, ...).
        policy: an audit policy, as loaded by `load_policy`, parsed, or compiled.
        backends: where events go; several are combined into a `Union`.
        user_resolver: who made a request, from its environ; the default is `system:anonymous`.
        builder: the clock and audit ID source.
        max_body_bytes: the largest body recorded; a larger one is left out and the event annotated as truncated.
        manage_backends: run the backends now and flush them at interpreter exit.
        request_info: request info from method and URL; the default is kube-apiserver's resolver.
    """

    def __init__(
        self,
        app: WSGIApp,
        policy: CompiledPolicy | Policy | LoadedPolicy,
        backends: Backend | Sequence[Backend],
        user_resolver: WSGIUserResolver = _anonymous,
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
        self.request_info: RequestInfoResolver = request_info or resolve_request_info
        self._running = False
        if manage_backends:
            self.run()
            atexit.register(self.shutdown)

    def run(self) -> None:
        """Start the backends (done at construction when `manage_backends`)."""
        if not self._running:
            self._running = True
            self.backend.run()

    def shutdown(self) -> None:
        """Flush and stop the backends (done at interpreter exit when `manage_backends`)."""
        if self._running:
            self._running = False
            self.backend.shutdown()

    def _process(self, events: list[Event]) -> bool:
        if not events:
            return True
        try:
            return self.backend.process_events(events)
        except Exception:
            log.exception("audit backend %s failed on %d event(s)", self.backend.name(), len(events))
            return False

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        audit_id = environ.get("HTTP_AUDIT_ID") or self.builder.new_audit_id()
        id_header = ("Audit-Id", audit_id)  # as Go writes the header name

        def start_with_id(status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None) -> Write:
            return start_response(status, [*headers, id_header], exc_info)

        url = request_url(environ)
        method = str(environ.get("REQUEST_METHOD", "GET"))
        try:
            info = self.request_info(method, url)
        except RequestInfoError as error:
            return _internal_error(start_with_id, url, f"failed to create RequestInfo: {error}")
        user = self.user_resolver(environ)
        recorder = self.builder.request(
            method=method,
            url=url,
            user=user if isinstance(user, UserInfo) else ANONYMOUS,
            policy=self.policy,
            info=info,
            source_ips=client_ips(
                environ.get("HTTP_X_FORWARDED_FOR"), environ.get("HTTP_X_REAL_IP"), environ.get("REMOTE_ADDR")
            ),
            user_agent=environ.get("HTTP_USER_AGENT", ""),
            audit_id=audit_id,
        )
        if recorder.level is Level.NONE:
            return self.app(environ, start_with_id)
        environ[SCOPE_KEY] = recorder
        if not self._process(recorder.received()):
            return _internal_error(start_with_id, url, "failed to store audit event")
        exchange = Exchange(recorder, self.max_body_bytes)
        if exchange.reads_ahead and exchange.request is not None:
            _read_ahead(environ, exchange.request)

        def start_audited(status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None) -> Write:
            content_type = next((value for key, value in headers if key.lower() == "content-type"), None)
            self._process(exchange.start(int(status.split(None, 1)[0]), content_type))
            write = start_with_id(status, headers, exc_info)

            def write_audited(data: bytes) -> object:
                exchange.add_response(data)
                return write(data)

            return write_audited

        try:
            result = self.app(environ, start_audited)
        except Exception as error:
            self._process(exchange.panic(error))
            raise
        return _AuditedBody(result, exchange, self._process)


class _AuditedBody:
    """The app's response iterable, recorded as it is sent: ResponseComplete once it is sent whole (or closed
    early by the server), Panic if producing it raises."""

    def __init__(self, result: Iterable[bytes], exchange: Exchange, process: Callable[[list[Event]], bool]) -> None:
        self._result = result
        self._exchange = exchange
        self._process = process
        self._done = False

    def _finish(self, events: list[Event]) -> None:
        if not self._done:
            self._done = True
            self._process(events)

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._result:
                self._exchange.add_response(chunk)
                yield chunk
        except Exception as error:
            self._finish(self._exchange.panic(error))
            raise
        self._finish(self._exchange.complete())

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            if not self._done:
                self._finish(self._exchange.complete())


def _internal_error(start_response: StartResponse, url: str, reason: str) -> list[bytes]:
    body = internal_error_body(url, reason)
    start_response(
        "500 Internal Server Error",
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]
