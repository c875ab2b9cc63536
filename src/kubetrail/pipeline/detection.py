"""The one detection runner: rules run on what the store made durable; alerts go to the store and the outputs.

`serve` and `ingest` use it the same way: the store tells the runner about each batch only after the batch's
WAL fsync (`Store.on_durable`, so an alert never names an event the store could lose) and only about the events
it newly stored (so re-sending or re-ingesting raises nothing twice). Batches wait in a bounded queue: without
`block`, a slow rule set or output never delays an acknowledgement — when more than `queue_events` events
wait, a new batch is not detected, which is counted (`kubetrail_detection_dropped_events_total`) and logged,
never silent; with `block=True` (`ingest`, and `serve`'s detection process, `pipeline.detection_process`, which
keeps the backlog and has the receiver answer 503 while it is full) the caller waits, so nothing goes undetected.

Stateful detectors that offer `save`/`load` are restored at start and checkpointed periodically and at shutdown
under `<store>/checkpoints/`. Events the store recovers from its WAL at start (acknowledged before a crash,
perhaps never detected) go through the stateless rules once more; only alerts the alert log does not hold yet
are stored and sent. Every rule set is wrapped in `OncePerRequest`, as in `kubetrail detect`, so the alerts
are the same whichever stages the audit policy keeps. The bus worker builds its engines with `build_engine` too.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

from kubetrail.alert.config import load_outputs
from kubetrail.alert.outputs import Outputs
from kubetrail.detect import (
    BUILTIN,
    BUILTIN_RULES_DIR,
    Alert,
    Detector,
    Engine,
    EventContext,
    Matching,
    RuleSet,
    event_time_ns,
    load_ruleset,
    rule_sources,
)
from kubetrail.detect.requests import OncePerRequest
from kubetrail.detect.stateful.spec import DEFAULT_MAX_KEYS
from kubetrail.model import Event, decode_event
from kubetrail.store import Durable, Store, StoreError
from kubetrail.store.alerts import AlertLog, recent_alert_keys

log = logging.getLogger(__name__)

DEFAULT_QUEUE_EVENTS = 200_000
"""Acknowledged events waiting for detection at most (a few hundred MB of decoded events at worst)."""
CHECKPOINT_EVERY_SECONDS = 60.0
CHECKPOINT_DIR = "checkpoints"


@runtime_checkable
class Checkpointable(Protocol):
    """A detector with state worth keeping across restarts."""

    def save(self, path: str) -> None: ...

    def load(self, path: str) -> None: ...


def default_rule_specs() -> list[str]:
    """The built-in ruleset when this version has one, else no rules (detection stays off)."""
    if BUILTIN_RULES_DIR.is_dir() and any(BUILTIN_RULES_DIR.glob("*.y*ml")):
        return [BUILTIN]
    return []


def build_engine(
    specs: Iterable[str | Path] | RuleSet, *, hostname: str | None = None, max_keys: int | None = None
) -> Engine:
    """Load rules as `kubetrail detect` does (every matching rule alerts), with any stateful detectors.

    `max_keys` bounds the keys each stateful rule keeps (a rule's own `max_keys` wins; None: the default).
    """
    ruleset = specs if isinstance(specs, RuleSet) else load_ruleset(rule_sources(specs))
    for notice in ruleset.notices:
        log.info("rules: %s", notice)
    host = hostname or socket.gethostname()
    limit = DEFAULT_MAX_KEYS if max_keys is None else max_keys
    extra: tuple[Detector, ...] = tuple(ruleset.detectors(hostname=host, max_keys=limit))
    return Engine(ruleset, matching=Matching.ALL, hostname=host, detectors=extra)


@dataclass
class DetectionStats:
    """Counts for `/metrics` and the shutdown line."""

    events: int = 0
    alerts: int = 0
    dropped_events: int = 0
    failed_batches: int = 0
    unstored_alerts: int = 0
    replayed_events: int = 0
    checkpoints: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)


_STOP = object()


@dataclass(frozen=True)
class _Batch:
    """Events the store newly made durable."""

    cluster: str
    events: list[Event]
    raws: list[bytes | None]


@dataclass(frozen=True)
class _Replay:
    """Acknowledged events the store recovered from its WAL at start (unsealed, so perhaps never detected)."""

    rows: pa.Table


class Detection:
    """Runs a detector over acknowledged batches in one thread; alerts are stored, then sent to the outputs."""

    def __init__(
        self,
        detector: Detector,
        alert_log: AlertLog,
        outputs: Outputs | None = None,
        *,
        checkpoint_dir: Path | None = None,
        queue_events: int = DEFAULT_QUEUE_EVENTS,
        checkpoint_every: float = CHECKPOINT_EVERY_SECONDS,
        block: bool = False,
    ) -> None:
        """`block`: a full queue makes `submit` wait (ingest) instead of leaving the batch undetected (serve)."""
        self.detector = detector
        self.per_request = OncePerRequest(detector)
        self.block = block
        self.alert_log = alert_log
        self.outputs = outputs
        self.stats = DetectionStats()
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.queue_events = queue_events
        self._queue: queue.Queue[object] = queue.Queue()
        self._pending = 0
        self._pending_lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._last_warning = 0.0
        self._closed = False
        self._stateful = [
            (index, item) for index, item in enumerate(stateful_parts(detector)) if isinstance(item, Checkpointable)
        ]

    # ----- state ------------------------------------------------------------------------------------------

    def _checkpoint_path(self, index: int) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / f"detect-state-{index}.ckpt"

    def restore(self) -> int:
        """Load every stateful detector's checkpoint that exists; returns how many were loaded."""
        loaded = 0
        for index, item in self._stateful:
            path = self._checkpoint_path(index)
            if path is not None and path.exists():
                try:
                    item.load(str(path))
                    loaded += 1
                except Exception as error:
                    log.warning("detection state %s not restored (starting empty): %s", path, error)
        return loaded

    def checkpoint(self) -> None:
        """Save every stateful detector's state (atomically, by the detector)."""
        for index, item in self._stateful:
            path = self._checkpoint_path(index)
            if path is None:
                continue
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                item.save(str(path))
                self.stats.checkpoints += 1
            except Exception as error:
                log.warning("detection state not saved to %s: %s", path, error)

    @property
    def pending_events(self) -> int:
        """Events queued and not finished yet."""
        with self._pending_lock:
            return self._pending

    # ----- running ----------------------------------------------------------------------------------------

    def start(self) -> None:
        self.restore()
        self._thread = threading.Thread(target=self._run, name="kubetrail-detection", daemon=True)
        self._thread.start()

    def submit(self, durable: Durable) -> None:
        """Queue a batch the store made durable; never blocks unless `block` (a full queue then waits for room)."""
        events = durable.events
        with self._pending_lock:
            room = self._pending == 0 or self._pending + len(events) <= self.queue_events
            while self.block and not room and not self._closed:
                self._pending_lock.wait(1.0)
                room = self._pending == 0 or self._pending + len(events) <= self.queue_events
            if room:
                self._pending += len(events)
            else:
                self.stats.dropped_events += len(events)
        if room:
            self._queue.put(_Batch(durable.cluster, durable.events, durable.raws))
        else:
            now = time.monotonic()
            if now - self._last_warning > 10:
                self._last_warning = now
                log.warning(
                    "detection is behind: %d acknowledged events were stored but not run through the rules so far",
                    self.stats.dropped_events,
                )

    def _run(self) -> None:
        last_checkpoint = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=1.0)
            except queue.Empty:
                item = None
            try:
                if item is _STOP:
                    return
                if isinstance(item, _Replay):
                    self._replay(item.rows)
                elif isinstance(item, _Batch):
                    self._process(item)
            except Exception as error:
                self.stats.failed_batches += 1
                log.error("detection failed on a batch: %s", error, exc_info=True)
            finally:
                if isinstance(item, _Batch):
                    with self._pending_lock:
                        self._pending -= len(item.events)
                        self._pending_lock.notify_all()
                if item is not None:
                    self._queue.task_done()
            if self._stateful and time.monotonic() - last_checkpoint >= self.checkpoint_every:
                self.checkpoint()
                last_checkpoint = time.monotonic()

    def _process(self, batch: _Batch) -> None:
        detect = self.per_request.detect
        cluster, raws = batch.cluster, batch.raws
        alerts: list[Alert] = []
        for event, raw in zip(batch.events, raws, strict=True):
            alerts.extend(detect(EventContext(event, cluster, raw)))
        self.stats.events += len(batch.events)
        if alerts:
            self._deliver(alerts)

    def replay(self, rows: pa.Table) -> None:
        """Queue the store's unsealed events (ROW_SCHEMA) for the stateless rules, ahead of anything new."""
        if rows.num_rows and isinstance(self.detector, Engine):
            self._queue.put(_Replay(rows))

    def _replay(self, rows: pa.Table) -> None:
        """Alerts of the stateless rules for events acknowledged before a crash, minus those already stored.

        Stateful rules are not replayed: their checkpoint already counts some of these events.
        """
        engine = self.detector
        assert isinstance(engine, Engine)
        stored = recent_alert_keys(self.alert_log.directory.parent)
        fresh: list[Alert] = []
        for line, cluster in zip(rows.column("event").to_pylist(), rows.column("cluster").to_pylist(), strict=True):
            raw = line.encode()
            event = decode_event(raw)
            ctx = EventContext(event, cluster, raw)
            rules = engine.matches(ctx)
            if not rules:
                continue
            time_ns = event_time_ns(event)
            for rule in rules:
                if (rule.name, cluster, event.auditID) not in stored:
                    fresh.append(engine.alert(rule, ctx, time_ns))
        self.stats.replayed_events += rows.num_rows
        if fresh:
            log.info("detected %d alerts in %d events recovered from the WAL", len(fresh), rows.num_rows)
            self._deliver(fresh)

    def _deliver(self, alerts: list[Alert]) -> None:
        self.stats.alerts += len(alerts)
        self.stats.by_rule.update(alert.rule for alert in alerts)
        try:
            self.alert_log.append(alerts)
        except StoreError as error:
            self.stats.unstored_alerts += len(alerts)
            log.error("%d alerts could not be stored (still sent to the outputs): %s", len(alerts), error)
        if self.outputs is not None:
            self.outputs.send(alerts)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued batch was detected (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 60.0) -> None:
        """Detect what is queued, checkpoint, close the outputs (delivering what they hold) and the alert log."""
        if self._closed:
            return
        self._closed = True
        with self._pending_lock:
            self._pending_lock.notify_all()
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._thread = None
        self.checkpoint()
        if self.outputs is not None:
            self.outputs.close(timeout)
        self.alert_log.close()


def stateful_parts(detector: Any) -> list[Any]:
    """The detector and the detectors inside it (an Engine's extra detectors), each once."""
    parts = [detector, *getattr(detector, "detectors", ())]
    seen: set[int] = set()
    unique = []
    for part in parts:
        if id(part) not in seen:
            seen.add(id(part))
            unique.append(part)
    return unique


def open_detection(
    store: Store,
    rules: Sequence[str | Path] | None,
    *,
    outputs_file: str | Path | None = None,
    max_keys: int | None = None,
    block: bool = False,
) -> Detection | None:
    """Load the rules (None: the built-in set) and outputs, and hook detection to `store` (None: no rules).

    Rule and outputs errors surface here, before anything runs. Alerts go to the store's `alerts` view;
    stateful state is checkpointed under the store; events the WAL recovered are detected again (stateless).
    """
    specs = list(rules) if rules is not None else default_rule_specs()
    if not specs:
        if rules is None:
            log.warning("no detection rules: events are stored but not checked (pass --rules)")
        return None
    engine = build_engine(specs, max_keys=max_keys)
    outputs = load_outputs(outputs_file, block=block) if outputs_file is not None else None
    root = store.layout.root
    detection = Detection(engine, AlertLog(root), outputs, checkpoint_dir=root / CHECKPOINT_DIR, block=block)
    detection.replay(store.tail_rows())
    detection.start()
    store.on_durable = detection.submit
    return detection
