"""One request's audit as an HTTP server sees it, whatever the server interface (ASGI, WSGI).

Sans-I/O: the ASGI and WSGI middlewares feed it the request body, the response start and the response body,
and hand the events it returns to their backends. Bodies are kept only when the level needs them (`Request`:
the request, `RequestResponse`: also the response), only for resource requests, only when they are valid JSON
and only up to a size limit. A body beyond the limit is left out and the events carry the annotation
`audit.k8s.io/truncated: "true"`, the mark of the apiserver's truncating backend.
"""

from __future__ import annotations

import functools
import ipaddress
import json

import msgspec

from kubetrail.emit.builder import RequestRecorder, request_uri
from kubetrail.emit.truncate import ANNOTATION_KEY, ANNOTATION_VALUE
from kubetrail.model.event import Event, Level, UserInfo

HEADER_AUDIT_ID = "audit-id"
DEFAULT_MAX_BODY_BYTES = 1 << 20
ANONYMOUS = UserInfo(username="system:anonymous", groups=["system:unauthenticated"])

_validate_json = msgspec.json.Decoder()


@functools.lru_cache(maxsize=4096)
def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip().strip("[]")))
    except ValueError:
        return None


def client_ips(forwarded: str | None, real_ip: str | None, peer: str | None) -> list[str]:
    """Client addresses as the apiserver lists them: X-Forwarded-For, then X-Real-Ip, then the peer."""
    found: list[str] = []
    if forwarded:
        found += [ip for part in forwarded.split(",") if (ip := _ip(part)) is not None]
    if real_ip:
        ip = _ip(real_ip)
        if ip is not None and ip not in found:
            found.append(ip)
    address = _ip(peer) if peer else None
    if address is not None and (not found or found[-1] != address):
        found.append(address)
    return found


def is_json_type(content_type: bytes | str) -> bool:
    """True for `application/json` and `*+json` media types (parameters ignored)."""
    raw = content_type.encode("latin-1") if isinstance(content_type, str) else bytes(content_type)
    kind = raw.split(b";", 1)[0].strip().lower()
    return kind == b"application/json" or kind.endswith(b"+json")


def internal_error_body(url: str, reason: str) -> bytes:
    """The apiserver's `responsewriters.InternalError` text: a 500 naming the request URI."""
    return f"Internal Server Error: {json.dumps(request_uri(url))}: {reason}\n".encode()


class BodyCapture:
    """Collects a body up to a limit; beyond it the body is given up (never cut) and `overflow` is set."""

    __slots__ = ("chunks", "limit", "overflow", "size")

    def __init__(self, limit: int) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.overflow = False

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
        """The body when it is complete, within the limit and valid JSON; else None."""
        if self.overflow:
            return None
        body = b"".join(self.chunks)
        if not body:
            return None
        try:
            _validate_json.decode(body)
        except msgspec.DecodeError:
            return None
        return msgspec.Raw(body)


class Exchange:
    """The audit of one request between the middleware and its recorder: which bodies to keep, and when."""

    def __init__(self, recorder: RequestRecorder, max_body_bytes: int) -> None:
        self.recorder = recorder
        self.max_body_bytes = max_body_bytes
        resource = recorder.info.is_resource_request
        self.request: BodyCapture | None = (
            BodyCapture(max_body_bytes) if resource and recorder.level.at_least(Level.REQUEST) else None
        )
        self._wants_response = resource and recorder.level is Level.REQUEST_RESPONSE and not recorder.long_running
        self.response: BodyCapture | None = None
        self.status = 200
        self.started = False
        self._request_logged = False

    @property
    def reads_ahead(self) -> bool:
        """True when the request body is read before the app runs: it is recorded, and the request is not a
        long-running one (watch, exec, proxy, ...) whose body may stream for as long as the response does."""
        return self.request is not None and not self.recorder.long_running

    def _truncated(self) -> None:
        self.recorder.annotate(ANNOTATION_KEY, ANNOTATION_VALUE)

    def log_request(self) -> None:
        """Hand the request body to the recorder, once (at the response start, or at the end at the latest)."""
        if self._request_logged or self.request is None:
            return
        self._request_logged = True
        if self.request.overflow:
            self._truncated()
            return
        body = self.request.body()
        if body is not None:
            self.recorder.log_request_body(body)

    def start(self, status: int, content_type: bytes | str | None) -> list[Event]:
        """The response headers go out: the ResponseStarted event of a long-running request, if any."""
        self.started = True
        self.status = status
        self.log_request()
        if self._wants_response and content_type is not None and is_json_type(content_type):
            self.response = BodyCapture(self.max_body_bytes)
        return self.recorder.started(status)

    def add_response(self, chunk: bytes) -> None:
        if self.response is not None:
            self.response.add(chunk)

    def complete(self) -> list[Event]:
        """The ResponseComplete event (and a ResponseStarted one the recorder still owes)."""
        self.log_request()
        if self.response is not None:
            if self.response.overflow:
                self._truncated()
            else:
                body = self.response.body()
                if body is not None:
                    self.recorder.log_response(self.status, body)
        return self.recorder.complete(self.status if self.started else None)

    def panic(self, error: BaseException) -> list[Event]:
        """The Panic event: the app raised."""
        self.log_request()
        return self.recorder.panic(error)
