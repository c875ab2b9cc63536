"""The per-event view that field accessors read: the typed event plus lazily parsed JSON parts.

Bodies stay `msgspec.Raw` in the model; a request or response object is parsed at most once per
event, and only when a rule or an output needs it. The whole event as JSON (for `jevt.*`) is built
from the original bytes when the reader kept them, else by re-encoding the typed event.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

import msgspec

from kubetrail.model import Event, encode_event

_decode = msgspec.json.decode


class _Missing:
    """The marker for a JSON key that is absent (JSON `null` is Python None)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


class EventContext:
    """One event under evaluation; `cache` holds field values computed for it."""

    __slots__ = ("_document", "_query", "_request", "_response", "cache", "cluster", "event", "raw")

    def __init__(self, event: Event, cluster: str = "", raw: bytes | None = None) -> None:
        self.event = event
        self.cluster = cluster
        self.raw = raw
        self.cache: dict[object, Any] = {}
        self._request: Any = None
        self._response: Any = None
        self._document: Any = None
        self._query: dict[str, str] | None = None

    @property
    def request(self) -> Any:
        """The parsed requestObject, or MISSING when the event has none."""
        if self._request is None:
            body = self.event.requestObject
            self._request = _decode(body) if body else MISSING
        return self._request

    @property
    def response(self) -> Any:
        """The parsed responseObject, or MISSING when the event has none."""
        if self._response is None:
            body = self.event.responseObject
            self._response = _decode(body) if body else MISSING
        return self._response

    @property
    def document(self) -> Any:
        """The whole event as JSON values, key order as written."""
        if self._document is None:
            self._document = _decode(self.raw if self.raw is not None else encode_event(self.event))
        return self._document

    @property
    def query(self) -> dict[str, str]:
        """The request URI's query parameters, first value of each (as Go's url.ParseQuery reads them)."""
        if self._query is None:
            query: dict[str, str] = {}
            for key, value in parse_qsl(urlsplit(self.event.requestURI).query, keep_blank_values=True):
                query.setdefault(key, value)
            self._query = query
        return self._query
