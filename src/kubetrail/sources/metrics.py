"""The sources in `/metrics`: one series per source (`source` label), read from each source's SourceStats."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from kubetrail.collect.metrics import Labels, Registry
from kubetrail.sources.base import Source

SERIES = (
    ("kubetrail_source_events_total", "events", "counter", "Events a source stored for the first time."),
    (
        "kubetrail_source_duplicates_total",
        "duplicates",
        "counter",
        "Events a source delivered that were stored already.",
    ),
    ("kubetrail_source_rejected_total", "rejected", "counter", "Invalid records a source sent to the dead letters."),
    ("kubetrail_source_skipped_total", "skipped", "counter", "Records that are not audit events (other logs)."),
    ("kubetrail_source_batches_total", "batches", "counter", "Batches a source stored."),
    ("kubetrail_source_errors_total", "errors", "counter", "Failed reads or deliveries of a source (retried)."),
    ("kubetrail_source_throttled_total", "throttled", "counter", "Calls the cloud refused as throttled (backed off)."),
    ("kubetrail_source_lag_seconds", "lag_seconds", "gauge", "How far behind its cloud a source is, in seconds."),
    (
        "kubetrail_source_consecutive_failures",
        "consecutive_failures",
        "gauge",
        "Failed tries of a source in a row (0: working).",
    ),
)


def register_source_metrics(registry: Registry, sources: Sequence[Source]) -> None:
    """Register the `kubetrail_source_*` series for `sources` (read at scrape time)."""

    def read(attribute: str) -> Iterable[tuple[Labels, float]]:
        return [((source.name,), float(getattr(source.stats, attribute))) for source in sources]

    for name, attribute, kind, text in SERIES:
        registry.gauge(name, text, ("source",), read=functools.partial(read, attribute), kind=kind)
