"""`serve`'s Prometheus metrics for detection: events, alerts, drops, failures, evictions, per-output fates."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from kubetrail.collect.metrics import Labels, Registry
from kubetrail.detect import Detector, Engine
from kubetrail.pipeline.detection import Detection, DetectionStats, stateful_parts
from kubetrail.pipeline.detection_process import DetectionProcess


def register_detection_metrics(detection: Detection | DetectionProcess, metrics: Registry) -> None:
    """Expose the runner's counters on `metrics` (in-process, or as the detection process reports them)."""
    stats = detection.stats
    for name, attribute, text in (
        ("kubetrail_detection_events_total", "events", "Acknowledged events run through the rules."),
        ("kubetrail_detection_alerts_total", "alerts", "Alerts raised and stored."),
        (
            "kubetrail_detection_dropped_events_total",
            "dropped_events",
            "Events stored but not detected (in-process queue full; serve's detection process never drops).",
        ),
        ("kubetrail_detection_failed_batches_total", "failed_batches", "Batches whose detection failed."),
        ("kubetrail_detection_unstored_alerts_total", "unstored_alerts", "Alerts the alert log could not store."),
    ):
        metrics.gauge(name, text, read=functools.partial(_stat, stats, attribute), kind="counter")
    if isinstance(detection, DetectionProcess):
        process = detection
        metrics.gauge(
            "kubetrail_detection_state_evictions_total",
            "Stateful rule keys evicted by the key limit (max_keys).",
            read=lambda: [((), float(process.evictions))],
            kind="counter",
        )
        metrics.gauge(
            "kubetrail_detection_backlog_events",
            "Acknowledged events waiting for detection (at most the backlog limit; beyond, batches get 503).",
            read=lambda: [((), float(process.backlog))],
        )
        metrics.gauge(
            "kubetrail_detection_lag_seconds",
            "How long the oldest acknowledged batch not yet detected has waited.",
            read=lambda: [((), process.lag_seconds())],
        )
    else:
        metrics.gauge(
            "kubetrail_detection_state_evictions_total",
            "Stateful rule keys evicted by the key limit (max_keys).",
            read=functools.partial(_evictions, detection.detector),
            kind="counter",
        )
    outputs = detection.outputs
    if outputs is None:
        return

    def per_output() -> Iterable[tuple[Labels, float]]:
        return [
            ((name, fate), float(getattr(counts, fate)))
            for name, counts in outputs.stats().items()
            for fate in ("sent", "below_min_priority", "rate_limited", "queue_full", "failed")
        ]

    metrics.gauge(
        "kubetrail_output_alerts_total",
        "Alerts per output and fate.",
        ("output", "fate"),
        read=per_output,
        kind="counter",
    )


def _evictions(detector: Detector) -> Iterable[tuple[Labels, float]]:
    total = sum(getattr(part, "evictions", 0) for part in stateful_parts(detector) if not isinstance(part, Engine))
    return [((), float(total))]


def _stat(stats: DetectionStats, attribute: str) -> Iterable[tuple[Labels, float]]:
    return [((), float(getattr(stats, attribute)))]
