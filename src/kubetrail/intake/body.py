"""One request or message body (a webhook POST, a bus message): inflated within limits, then decoded.

The body is an Event, an EventList or a JSON array of either, as kube-apiserver's webhook backend sends it.
"""

from __future__ import annotations

from kubetrail.intake.batch import Batch
from kubetrail.intake.inflate import gunzip
from kubetrail.intake.native import add_document


def decode_body(
    body: bytes,
    *,
    source: str,
    gzipped: bool = False,
    max_body_bytes: int | None = None,
    max_event_bytes: int | None = None,
) -> Batch:
    """Every event of a body, and a rejection for every item that is not one.

    Raises NotJsonError (not JSON at all), GzipError and InflateLimitError (a gzip body that is corrupt or inflates
    past `max_body_bytes`); an event over `max_event_bytes` is refused on its own, like any invalid item.
    """
    if gzipped:
        body = gunzip(body, limit=max_body_bytes if max_body_bytes is not None else 1 << 62, source=source)
    batch = Batch()
    add_document(batch, body, source, max_event_bytes=max_event_bytes)
    return batch
