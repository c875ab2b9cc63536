"""Log backend throughput: events/s written to a real file on one core, as kube-apiserver hands them over.

Target: ≥ 50k events/s in json format with one `process_events` call per event (the blocking mode's
pattern). Also measured: batches of 100, rotation every 8 MB with 3 backups, the legacy format and
batch mode (enqueue + writer thread). Events come from `bench.corpus.realistic_events`.
Rates are events per CPU second of the writing process (user + system time, so other load on the
machine does not distort them); wall-clock rates are in each result's detail.
Run alone with `python -m bench.bench_emit`; `KUBETRAIL_BENCH_SCALE` shrinks the event count.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import BenchResult
from kubetrail.emit.buffered import BatchConfig, Buffered
from kubetrail.emit.logbackend import LogBackend
from kubetrail.emit.rotation import RotatingFile
from kubetrail.model.event import Event

NAME = "emit"
TARGET_EVENTS_PER_S = 50_000.0


def _events() -> list[Event]:
    count = max(2_000, int(100_000 * float(os.environ.get("KUBETRAIL_BENCH_SCALE", "1"))))
    from bench.corpus import realistic_events

    return realistic_events(count)


def _write(events: list[Event], directory: Path, make: Callable[[Path], LogBackend], batch: int) -> int:
    path = directory / "audit.log"
    for leftover in directory.iterdir():
        leftover.unlink()
    backend = make(path)
    process = backend.process_events
    if batch == 1:
        for event in events:
            process([event])
    else:
        for start in range(0, len(events), batch):
            process(events[start : start + batch])
    backend.shutdown()
    return sum(entry.stat().st_size for entry in directory.iterdir())


def _cpu_timed(function: Callable[[], Any], repeat: int = 3) -> tuple[float, float, Any]:
    """Best CPU seconds (all threads of this process) and best wall seconds of `repeat` runs, and the last result."""
    best_cpu = best_wall = float("inf")
    result: Any = None
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        result = function()
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return best_cpu, best_wall, result


def _buffered(events: list[Event], directory: Path) -> int:
    for leftover in directory.iterdir():
        leftover.unlink()
    config = replace(BatchConfig.for_log(), buffer_size=len(events))
    buffered = Buffered(LogBackend(RotatingFile(directory / "audit.log")), config, plugin="log")
    buffered.run()
    for event in events:
        buffered.process_events([event])
    buffered.shutdown()
    return buffered.dropped


def run() -> list[BenchResult]:
    """Events/s of the log backend in its main configurations."""
    events = _events()
    count = len(events)
    results: list[BenchResult] = []
    with tempfile.TemporaryDirectory(prefix="kubetrail-bench-emit-") as name:
        directory = Path(name)
        cases: list[tuple[str, Callable[[Path], LogBackend], int, float | None]] = [
            ("log json, one event per call", lambda path: LogBackend(RotatingFile(path)), 1, TARGET_EVENTS_PER_S),
            ("log json, batches of 100", lambda path: LogBackend(RotatingFile(path)), 100, None),
            (
                "log json, rotating every 8 MB, 3 backups",
                lambda path: LogBackend(RotatingFile(path, max_size_mb=8, max_backups=3)),
                1,
                None,
            ),
            ("log legacy, one event per call", lambda path: LogBackend(RotatingFile(path), "legacy"), 1, None),
        ]
        for metric, make, batch, target in cases:

            def write(make: Callable[[Path], LogBackend] = make, batch: int = batch) -> int:
                return _write(events, directory, make, batch)

            cpu, wall, size = _cpu_timed(write)
            detail = {"events": count, "bytes_on_disk": size, "average_line_bytes": round(size / count)}
            detail["wall_clock_events_per_s"] = round(count / wall)
            results.append(BenchResult(NAME, metric, count / cpu, "events/s", target, detail=detail))
        cpu, wall, dropped = _cpu_timed(lambda: _buffered(events, directory))
        results.append(
            BenchResult(
                NAME,
                "log json, batch mode (enqueue + writer thread, buffer holds all)",
                count / cpu,
                "events/s",
                detail={"events": count, "dropped": dropped, "wall_clock_events_per_s": round(count / wall)},
            )
        )
    return results


if __name__ == "__main__":
    for result in run():
        print(f"{result.metric}: {result.value:,.0f} {result.unit} {result.detail}")
