"""Size limits of the receiver: read a request body without ever holding more than allowed.

The body limit is checked while the body streams in (and against `Content-Length` before reading); the intake
checks it again while inflating a gzip body (`kubetrail.intake.inflate`), so a small gzip bomb cannot expand
past it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from kubetrail.errors import KubetrailError

DEFAULT_MAX_BODY_BYTES = 12 << 20
DEFAULT_MAX_EVENT_BYTES = 256 << 10
DEFAULT_MAX_IN_FLIGHT = 64
"""Batches being read, decoded or stored at once; beyond it the receiver sheds load with 503 and Retry-After
(the apiserver retries), so memory stays bounded by about this many bodies."""
_INFLATE_STEP = 1 << 20

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]


@dataclass(frozen=True)
class Limits:
    """How large a request body (before and after gzip) and one event in it may be, in bytes, and how many
    batches may be in hand at once."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT


class RequestError(KubetrailError):
    """A request the receiver refuses; `status` is the HTTP status it answers with, `message` one line why."""

    def __init__(self, status: int, message: str, *, hint: str = "") -> None:
        self.status = status
        self.message = message
        self.hint = hint
        super().__init__(message)


class ClientDisconnected(Exception):
    """The sender went away before the whole body arrived: there is nobody to answer."""


def too_large(what: str, limit: int) -> RequestError:
    return RequestError(
        413,
        f"{what} is larger than the limit of {limit} bytes",
        hint="send smaller batches (kube-apiserver: --audit-webhook-truncate-enabled and its max sizes)",
    )


async def read_body(receive: Receive, limit: int, content_length: int | None = None) -> bytes:
    """The whole request body; raises 413 as soon as it is known to exceed `limit` bytes."""
    if content_length is not None and content_length > limit:
        raise too_large("the request body", limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise too_large("the request body", limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
