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
    """One event under evaluation; `cache` holds field values computed for it.

    Only the event, cluster and raw bytes are set up front (one is made per event, so it must be cheap): the
    parsed parts and the cache are created on first use.
    """

    __slots__ = ("_cache", "_document", "_query", "_request", "_response", "cluster", "event", "raw")

    def __init__(self, event: Event, cluster: str = "", raw: bytes | None = None) -> None:
        self.event = event
        self.cluster = cluster
        self.raw = raw

    @property
    def cache(self) -> dict[object, Any]:
        """Field values computed for this event (by accessors that are costly to repeat)."""
        try:
            return self._cache
        except AttributeError:
            self._cache: dict[object, Any] = {}
            return self._cache

    @property
    def request(self) -> Any:
        """The parsed requestObject, or MISSING when the event has none."""
        try:
            return self._request
        except AttributeError:
            body = self.event.requestObject
            self._request: Any = _decode(body) if body else MISSING
            return self._request

    @property
    def response(self) -> Any:
        """The parsed responseObject, or MISSING when the event has none."""
        try:
            return self._response
        except AttributeError:
            body = self.event.responseObject
            self._response: Any = _decode(body) if body else MISSING
            return self._response

    @property
    def document(self) -> Any:
        """The whole event as JSON values, key order as written."""
        try:
            return self._document
        except AttributeError:
            self._document: Any = _decode(self.raw if self.raw is not None else encode_event(self.event))
            return self._document

    @property
    def query(self) -> dict[str, str]:
        """The request URI's query parameters, first value of each (as Go's url.ParseQuery reads them)."""
        try:
            return self._query
        except AttributeError:
            query: dict[str, str] = {}
            for key, value in parse_qsl(urlsplit(self.event.requestURI).query, keep_blank_values=True):
                query.setdefault(key, value)
            self._query: dict[str, str] = query
            return self._query
