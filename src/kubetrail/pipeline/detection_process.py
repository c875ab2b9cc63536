"""Detection in a child process for `serve`: the rules run beside the receiver, not in its interpreter.

Detection costs more CPU per event than receiving does; in the receiver's process it would hold the GIL the
event loop needs to parse, decode and acknowledge. So `serve` runs the same `Detection` runner in a child
process (started from a `forkserver`, which has the detection modules loaded once) and hands it each batch the
store made durable (after its fsync, only the newly stored events) as bytes: the WAL record the store wrote
(else msgpack `[cluster, [JSON, ...]]`), so nothing is encoded twice.
The child decodes the events, runs the rules, stores alerts in the store's alert log, sends them to the outputs
and checkpoints stateful rules under the store, as in-process detection does; it reports its counters back.

When detection falls behind, batches wait in this process as bytes, at most `queue_events` events (about 1 KB
each). Nothing is dropped: while that backlog is full the receiver refuses new batches with 503 and
`Retry-After` (the apiserver retries; dedup makes a retry safe), and the other doors (tailers, cloud sources)
wait. So alerts come late, never lost, and memory stays bounded (the child runs at a lower CPU priority,
DETECTION_NICE, so that under a burst acknowledging comes first); `/metrics` shows the backlog
(`kubetrail_detection_backlog_events`), how late detection is (`kubetrail_detection_lag_seconds`) and the
refusals (`kubetrail_detection_refused_batches_total`). If the child dies, `/readyz` fails and an ERROR is
logged; serve goes on storing and acknowledging, and counts what it no longer detects (and what the child
held) in `kubetrail_detection_dropped_events_total`. Events
acknowledged but not yet detected when `serve` is killed are detected at the next start if they were not sealed
yet (the WAL replay, as for in-process detection); the backlog is usually far smaller than a WAL segment.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa

from kubetrail.alert.outputs.fanout import OutputStats
from kubetrail.gc_tuning import tune_for_streaming
from kubetrail.model import Event, decode_event, encode_event
from kubetrail.pipeline.detection import (
    CHECKPOINT_DIR,
    DEFAULT_QUEUE_EVENTS,
    Detection,
    DetectionStats,
    build_engine,
    stateful_parts,
)
from kubetrail.store import Durable
from kubetrail.store.wal import RECORD_HEADER, WalBatch

log = logging.getLogger(__name__)

CHILD_QUEUE_EVENTS = 8_000
"""Decoded events the child holds at most; the rest of the backlog waits in the parent as bytes."""
DETECTION_NICE = 10
"""The child's CPU priority (Linux nice): under a burst the receiver gets the cores first and detection catches up
after it (its backlog is bounded, see above); on an idle machine the nice value changes nothing."""
REPORT_EVERY_SECONDS = 0.1
START_TIMEOUT_SECONDS = 120.0
_BATCH, _RECORD, _REPLAY = b"B", b"W", b"R"
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(tuple[str, list[bytes]])
_record_decoder = msgspec.msgpack.Decoder(WalBatch)


@dataclass(frozen=True)
class DetectionSettings:
    """What the child needs to build its runner: the rules, the outputs file and the store it writes alerts to."""

    specs: tuple[str, ...]
    store_root: str
    outputs_file: str | None = None
    max_keys: int | None = None


@dataclass
class _Report:
    """The child's counters, sent after each batch (at most every REPORT_EVERY_SECONDS) and when it stops."""

    done: int = 0
    """Events taken from the parent and finished (detected, or failed and counted)."""
    stats: dict[str, Any] = field(default_factory=dict)
    evictions: int = 0
    outputs: dict[str, dict[str, int]] = field(default_factory=dict)


class _ChildOutputs:
    """The outputs' counters as the child last reported them (what `/metrics` reads as `outputs.stats()`)."""

    def __init__(self) -> None:
        self.counts: dict[str, OutputStats] = {}

    def stats(self) -> dict[str, OutputStats]:
        return dict(self.counts)


class DetectionProcess:
    """The parent's side: a bounded backlog of durable batches, fed to the child by a thread."""

    def __init__(self, settings: DetectionSettings, *, queue_events: int = DEFAULT_QUEUE_EVENTS) -> None:
        """Start the child and wait until its rules and outputs are loaded (their errors are raised here)."""
        self.settings = settings
        self.queue_events = queue_events
        self.stats = DetectionStats()
        self.evictions = 0
        self.outputs: _ChildOutputs | None = _ChildOutputs() if settings.outputs_file is not None else None
        self._cond = threading.Condition()
        self._pending: collections.deque[tuple[bytes, bytes]] = collections.deque()
        """(kind, payload) to send; sent as two messages, so a WAL record is never copied to prefix it."""
        self._submitted = 0
        self._done = 0
        self._marks: collections.deque[tuple[int, float]] = collections.deque()
        """(events submitted up to and including this batch, when it was submitted), for the lag."""
        self._closing = False
        self.failure: str | None = None
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        inbox, self._to_child = context.Pipe(duplex=False)
        self._from_child, outbox = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_child_main, args=(inbox, outbox, settings), name="kubetrail-detection", daemon=True
        )
        self._process.start()
        inbox.close()
        outbox.close()
        self._expect_ready()
        self._feeder = threading.Thread(target=self._feed, name="kubetrail-detection-feed", daemon=True)
        self._reader = threading.Thread(target=self._read, name="kubetrail-detection-reports", daemon=True)
        self._feeder.start()
        self._reader.start()

    def _expect_ready(self) -> None:
        if not self._from_child.poll(START_TIMEOUT_SECONDS):
            self._process.kill()
            raise RuntimeError("the detection process did not start")
        try:
            kind, value = self._from_child.recv()
        except EOFError:
            raise RuntimeError(f"the detection process exited at start ({self._process.exitcode})") from None
        if kind == "error":
            self._process.join(10)
            raise value

    # ----- the backlog ------------------------------------------------------------------------------------------

    @property
    def backlog(self) -> int:
        """Acknowledged events not detected yet (waiting here, in the pipe or in the child)."""
        return self._submitted - self._done

    @property
    def full(self) -> bool:
        """True while the backlog is at its limit: the receiver refuses new batches (503) until it shrinks."""
        return self.failure is None and self.backlog >= self.queue_events

    def lag_seconds(self) -> float:
        """How long the oldest batch not yet detected has waited (0 when detection has caught up)."""
        with self._cond:
            while self._marks and self._marks[0][0] <= self._done:
                self._marks.popleft()
            return time.monotonic() - self._marks[0][1] if self._marks else 0.0

    def submit(self, durable: Durable) -> None:
        """Queue a batch the store made durable; never drops it.

        On the event loop this never blocks (the receiver refuses new batches while the backlog is full, so it
        exceeds its limit by at most the batches already in hand); from another thread (a tailer, a cloud
        source) it waits for room.
        """
        count = len(durable.events)
        if durable.record is not None:  # the WAL record as written: no second encoding
            message = (_RECORD, durable.record)
        else:
            pairs = zip(durable.events, durable.raws, strict=True)
            lines = [raw if raw is not None else encode_event(event) for event, raw in pairs]
            message = (_BATCH, _encoder.encode((durable.cluster, lines)))
        with self._cond:
            if not _on_event_loop():
                while self.full and not self._closing:
                    self._cond.wait(1.0)
            if self.failure is not None:  # the child is gone: counted (and /readyz fails), never held
                self.stats.dropped_events += count
                return
            self._submitted += count
            self._marks.append((self._submitted, time.monotonic()))
            self._pending.append(message)
            self._cond.notify_all()

    def replay(self, rows: pa.Table) -> None:
        """Queue the store's unsealed events (ROW_SCHEMA) for the stateless rules, ahead of anything new."""
        if not rows.num_rows:
            return
        sink = pa.BufferOutputStream()
        table = rows.select(["event", "cluster"])
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        with self._cond:
            self._submitted += rows.num_rows
            self._marks.append((self._submitted, time.monotonic()))
            self._pending.append((_REPLAY, sink.getvalue().to_pybytes()))
            self._cond.notify_all()

    def _feed(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    break
                kind, payload = self._pending.popleft()
            try:
                self._to_child.send_bytes(kind)
                self._to_child.send_bytes(payload)
            except OSError as error:
                self._fail(f"detection stopped: {error}")
                return
        with contextlib.suppress(OSError):
            self._to_child.send_bytes(b"")  # the end: the child detects what it holds and stops

    def _read(self) -> None:
        while True:
            try:
                report: _Report = self._from_child.recv()
            except (EOFError, OSError):
                if not self._closing:
                    self._fail(f"the detection process exited ({self._process.exitcode})")
                return
            with self._cond:
                if self.failure is None:
                    self._done = report.done
                for name, value in report.stats.items():
                    setattr(self.stats, name, collections.Counter(value) if name == "by_rule" else value)
                self.evictions = report.evictions
                if self.outputs is not None:
                    self.outputs.counts = {name: OutputStats(**counts) for name, counts in report.outputs.items()}
                self._cond.notify_all()

    def _fail(self, reason: str) -> None:
        log.error("%s; acknowledged events are no longer detected until serve restarts", reason)
        with self._cond:
            self.failure = reason
            self.stats.dropped_events += self._submitted - self._done
            self._submitted = self._done
            self._pending.clear()
            self._marks.clear()
            self._cond.notify_all()

    def health(self) -> str | None:
        """Why serve is not ready on detection's account (the child died), or None."""
        return self.failure

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every submitted event was detected (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._done < self._submitted:
                left = deadline - time.monotonic()
                if left <= 0 or self.failure is not None:
                    return False
                self._cond.wait(min(left, 0.5))
        return True

    def close(self, timeout: float = 60.0) -> None:
        """Detect what is queued, then stop the child (it checkpoints and closes its outputs and alert log)."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
        self._feeder.join(timeout)
        self._process.join(timeout)
        if self._process.is_alive():
            log.error("the detection process did not stop within %.0f s; killed", timeout)
            self._process.kill()
            self._process.join(5)
        self._reader.join(5)
        self._to_child.close()
        self._from_child.close()


def _on_event_loop() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


# ----- the child ----------------------------------------------------------------------------------------------


def open_child_detection(settings: DetectionSettings) -> Detection:
    """The runner the child uses: the rules, the outputs, the store's alert log and checkpoints."""
    from kubetrail.alert.config import load_outputs
    from kubetrail.store.alerts import AlertLog

    engine = build_engine(list(settings.specs), max_keys=settings.max_keys)
    outputs = load_outputs(settings.outputs_file) if settings.outputs_file is not None else None
    root = Path(settings.store_root)
    detection = Detection(
        engine,
        AlertLog(root),
        outputs,
        checkpoint_dir=root / CHECKPOINT_DIR,
        queue_events=CHILD_QUEUE_EVENTS,
        block=True,
    )
    detection.start()
    return detection


def _picklable(error: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(str(error))
    return error


_STAT_FIELDS = [item.name for item in fields(DetectionStats) if item.name != "by_rule"]


def _report(detection: Detection, received: int) -> _Report:
    done = received - detection.pending_events  # first: the counters read after it include every finished event
    # field by field: the detection thread updates these meanwhile (a dict copy is atomic, iterating it is not)
    stats: dict[str, Any] = {name: getattr(detection.stats, name) for name in _STAT_FIELDS}
    stats["by_rule"] = dict(detection.stats.by_rule)
    evictions = sum(getattr(part, "evictions", 0) for part in stateful_parts(detection.detector)[1:])
    outputs = {} if detection.outputs is None else {
        name: asdict(counts) for name, counts in detection.outputs.stats().items()
    }  # fmt: skip
    return _Report(done, stats, evictions, outputs)


def decode_record_batch(record: bytes) -> tuple[str, list[bytes], list[Event]]:
    """A WAL record as the detection process gets it: its cluster, stored JSON lines and events."""
    return _decode(_RECORD, record)


def _decode(kind: bytes, body: bytes) -> tuple[str, list[bytes], list[Event]]:
    """A batch from the parent: its cluster, stored JSON lines and events (none when it cannot be decoded)."""
    cluster, lines = "", []
    try:
        if kind == _RECORD:  # handed over in memory, not read from disk: its checksum needs no second look
            batch = _record_decoder.decode(memoryview(body)[RECORD_HEADER.size :])
            cluster, lines = batch.cluster, batch.lines
        else:
            cluster, lines = _decoder.decode(body)
        return cluster, lines, [decode_event(line) for line in lines]
    except Exception as error:
        log.error("detection could not decode a batch of %d events: %s", len(lines), error)
        return cluster, lines, []


def _child_main(inbox: Connection, outbox: Connection, settings: DetectionSettings) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops the child
    with contextlib.suppress(OSError):
        os.nice(DETECTION_NICE)
    try:
        detection = open_child_detection(settings)
    except BaseException as error:
        outbox.send(("error", _picklable(error)))
        return
    tune_for_streaming(collect=True)
    outbox.send(("ready", None))
    received = [0]
    stop = threading.Event()
    lock = threading.Lock()

    def report() -> None:
        last: _Report | None = None
        while not stop.wait(REPORT_EVERY_SECONDS):
            try:
                with lock:
                    current = _report(detection, received[0])
                if current != last:
                    outbox.send(current)
                    last = current
            except OSError:
                return  # the parent is gone
            except Exception as error:  # a report is retried at the next tick
                log.warning("detection could not report its counters: %s", error)

    reporter = threading.Thread(target=report, name="kubetrail-detection-report", daemon=True)
    reporter.start()
    try:
        while True:
            try:
                kind = inbox.recv_bytes()
                body = inbox.recv_bytes() if kind else b""
            except (EOFError, OSError):
                break  # the parent is gone (killed): what it acknowledged is in the WAL, detected at the next start
            if not kind:
                break
            if kind == _REPLAY:
                rows = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
                detection.replay(rows)
                detection.drain(float("inf"))
                with lock:
                    received[0] += rows.num_rows
                continue
            cluster, lines, events = _decode(kind, body)
            if not events:  # stored events decode; this would be a defect, counted and logged
                detection.stats.failed_batches += 1
            raws: list[bytes | None] = list(lines)
            with lock:  # counted and queued together, so that a report never counts this batch as finished early
                received[0] += len(lines)
                if events:
                    detection.submit(Durable(cluster, events, raws))
    finally:
        detection.close()
        stop.set()
        reporter.join(5)
        with contextlib.suppress(OSError):
            outbox.send(_report(detection, received[0]))
        outbox.close()
