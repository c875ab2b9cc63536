"""Prometheus metrics of the receiver, tailers and store, in the text exposition format (version 0.0.4).

Hand-written to stay dependency-free: counters and histograms with labels, gauges read at scrape time.
Every update is thread-safe (the WAL's sync thread and the tailers update them too).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from kubetrail.store import FileOps

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

Labels = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(label_names)
        self._lock = threading.Lock()

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    """A monotonically increasing count per label set."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, label_names)
        self._values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, *labels: str) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        with self._lock:
            return self._values.get(labels, 0.0)

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.label_names, labels)} {_number(value)}" for labels, value in items]


class Gauge(_Metric):
    """A value that goes up and down: set directly, or read from `read()` at scrape time.

    With `read`, `kind` may also be "counter": a count kept elsewhere (the store's, a tailer's), exposed as is.
    """

    kind = "gauge"

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str] = (),
        read: Callable[[], Iterable[tuple[Labels, float]]] | None = None,
        kind: str = "gauge",
    ) -> None:
        super().__init__(name, help_text, label_names)
        self._values: dict[Labels, float] = {}
        self._read = read
        self.kind = kind

    def add(self, amount: float, *labels: str) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def set(self, value: float, *labels: str) -> None:
        with self._lock:
            self._values[labels] = value

    def value(self, *labels: str) -> float:
        with self._lock:
            return self._values.get(labels, 0.0)

    def samples(self) -> list[str]:
        if self._read is not None:
            items = sorted(self._read())
        else:
            with self._lock:
                items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.label_names, labels)} {_number(value)}" for labels, value in items]


class Histogram(_Metric):
    """Observations counted into cumulative buckets (`le`), with their sum and count."""

    kind = "histogram"

    def __init__(
        self, name: str, help_text: str, label_names: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> None:
        super().__init__(name, help_text, label_names)
        self.buckets = tuple(sorted(buckets))
        self._counts: dict[Labels, list[int]] = {}
        self._sums: dict[Labels, float] = {}

    def observe(self, value: float, *labels: str) -> None:
        with self._lock:
            counts = self._counts.get(labels)
            if counts is None:
                counts = self._counts[labels] = [0] * (len(self.buckets) + 1)
            for index, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[index] += 1
                    break
            else:
                counts[-1] += 1
            self._sums[labels] = self._sums.get(labels, 0.0) + value

    def count(self, *labels: str) -> int:
        with self._lock:
            return sum(self._counts.get(labels, ()))

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted((labels, list(counts), self._sums[labels]) for labels, counts in self._counts.items())
        lines: list[str] = []
        for labels, counts, total in items:
            running = 0
            for bound, count in zip([*self.buckets, math.inf], counts, strict=True):
                running += count
                le = f'le="{_number(bound)}"'
                lines.append(f"{self.name}_bucket{_labels(self.label_names, labels, le)} {running}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, labels)} {_number(total)}")
            lines.append(f"{self.name}_count{_labels(self.label_names, labels)} {running}")
        return lines


MAX_CLUSTER_LABELS = 100
"""Clusters named in metrics labels at most; later ones are counted under `other` (bounded cardinality)."""
OTHER_CLUSTERS = "other"


class Registry:
    """The metrics one `kubetrail serve` exposes at `/metrics`."""

    def __init__(self) -> None:
        self._metrics: list[_Metric] = []
        self._lock = threading.Lock()
        self._clusters: set[str] = set()
        self.requests = self.counter(
            "kubetrail_receiver_requests_total", "HTTP requests by path and status.", ("path", "code")
        )
        self.received = self.counter(
            "kubetrail_receiver_events_received_total",
            "Events (valid or not) in accepted request bodies.",
            ("cluster",),
        )
        self.accepted = self.counter(
            "kubetrail_receiver_events_accepted_total", "Events stored durably for the first time.", ("cluster",)
        )
        self.duplicates = self.counter(
            "kubetrail_receiver_events_duplicate_total", "Events already stored (retries, replays).", ("cluster",)
        )
        self.rejected = self.counter(
            "kubetrail_receiver_events_rejected_total", "Invalid events written to the dead-letter file.", ("cluster",)
        )
        self.bytes = self.counter("kubetrail_receiver_bytes_total", "Request body bytes as received.", ("cluster",))
        self.shed = self.counter(
            "kubetrail_receiver_shed_total", "Batches answered 503 because too many were in hand already."
        )
        self.fsync = self.histogram("kubetrail_wal_fsync_seconds", "Duration of the WAL's group-commit fsyncs.")
        self.ack = self.histogram(
            "kubetrail_receiver_ack_seconds", "Time from a complete request body to its durable acknowledgement."
        )
        self.queue = self.gauge("kubetrail_receiver_queue_depth", "Requests waiting for their batch to be durable.")
        self.pending = self.gauge(
            "kubetrail_receiver_pending_events", "Events in requests waiting for their batch to be durable."
        )

    def cluster(self, name: str) -> str:
        """The label for a cluster: its name for the first MAX_CLUSTER_LABELS seen, then `other`."""
        with self._lock:
            if name in self._clusters:
                return name
            if len(self._clusters) < MAX_CLUSTER_LABELS:
                self._clusters.add(name)
                return name
        return OTHER_CLUSTERS

    def register(self, metric: _Metric) -> None:
        with self._lock:
            if any(existing.name == metric.name for existing in self._metrics):
                raise ValueError(f"metric {metric.name} is registered twice")
            self._metrics.append(metric)

    def counter(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> Counter:
        metric = Counter(name, help_text, label_names)
        self.register(metric)
        return metric

    def gauge(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str] = (),
        read: Callable[[], Iterable[tuple[Labels, float]]] | None = None,
        kind: str = "gauge",
    ) -> Gauge:
        metric = Gauge(name, help_text, label_names, read, kind)
        self.register(metric)
        return metric

    def histogram(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> Histogram:
        metric = Histogram(name, help_text, label_names)
        self.register(metric)
        return metric

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format."""
        with self._lock:
            metrics = list(self._metrics)
        lines: list[str] = []
        for metric in metrics:
            lines.extend(metric.header())
            lines.extend(metric.samples())
        return ("\n".join(lines) + "\n").encode()


class TimedFileOps(FileOps):
    """The WAL's system calls, with each fsync's duration observed into a histogram."""

    def __init__(self, histogram: Histogram, inner: FileOps | None = None) -> None:
        self._histogram = histogram
        self._inner = inner or FileOps()

    def write(self, fd: int, data: bytes | memoryview) -> int:
        return self._inner.write(fd, data)

    def fsync(self, fd: int) -> None:
        started = time.perf_counter()
        try:
            self._inner.fsync(fd)
        finally:
            self._histogram.observe(time.perf_counter() - started)

    def truncate(self, fd: int, length: int) -> None:
        self._inner.truncate(fd, length)
