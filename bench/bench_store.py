"""The durable store: bulk ingest against a json.loads loop, memory, size on disk, fsync'd group-commit appends.

- ingest: `kubetrail ingest` (read, decode, detect with the built-in rules, store, seal) of a 1M-event realistic
  NDJSON file as its own process, against a process that only `json.loads` every line of the same file;
  alternated, best of INGEST_REPEATS each. Target: ingest at least 1.5x faster than the json.loads loop.
  Also `--no-detect`, and the peak RSS of the ingest process (target <= 300 MB at 1M events).
- tail: RSS growth per unsealed event (appends with sealing held back), against the JSON bytes per event.
- size: the sealed store per 1M events against the raw NDJSON and `gzip -6` of it; target <= 15% of NDJSON.
- wal: several writer threads appending batches of 400 events, each append acknowledged only after its
  fsync (group commit); events/s acknowledged (target >= 20k/s on 2 cores) and p50/p99 append latency.

`KUBETRAIL_BENCH_SCALE=0.1` shrinks every count. Run alone: `python -m bench store`.
"""

from __future__ import annotations

import gc
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import BenchResult, run_module_measured
from kubetrail.intake import read_path
from kubetrail.model import Event
from kubetrail.store import Store, StoreOptions

NAME = "store"
INGEST_EVENTS = 1_000_000
WAL_EVENTS = 200_000
WAL_BATCH = 400
WAL_THREADS = 4
TARGET_STORE_PERCENT = 15.0
TARGET_ACK_RATE = 20_000.0
TARGET_INGEST_RATIO = 1.5
TARGET_PEAK_MB = 300.0
INGEST_REPEATS = 2
TAIL_EVENTS = 20_000
JSON_LOOP = "import json, sys\nwith open(sys.argv[1], 'rb') as f:\n    for line in f:\n        json.loads(line)\n"


def scaled(count: int) -> int:
    """`count` times KUBETRAIL_BENCH_SCALE (default 1), at least 2000."""
    return max(2000, int(count * float(os.environ.get("KUBETRAIL_BENCH_SCALE", "1"))))


def corpus_file(count: int) -> Path:
    """Realistic NDJSON from the shared bench corpus (`bench.corpus`), or a local builder when it is absent."""
    try:
        from bench.corpus import write_realistic_ndjson
    except ImportError:
        return _local_corpus(count)
    return write_realistic_ndjson(None, count)


def _local_corpus(count: int) -> Path:
    from tests.store.factory import make_events, ndjson

    target = Path(tempfile.gettempdir()) / f"kubetrail-bench-store-{count}.ndjson"
    if not target.exists():
        with open(target, "wb") as handle:
            for start in range(0, count, 10_000):
                handle.write(ndjson(make_events(start, min(10_000, count - start))))
    return target


def gzip_size(path: Path) -> int:
    """Bytes of `gzip -6` of a file, streamed."""
    size = 0

    class Counter:
        def write(self, data: bytes) -> int:
            nonlocal size
            size += len(data)
            return len(data)

        def flush(self) -> None:
            pass

    with open(path, "rb") as source, gzip.GzipFile(fileobj=Counter(), mode="wb", compresslevel=6) as sink:  # type: ignore[arg-type]
        shutil.copyfileobj(source, sink, 1 << 22)
    return size


def _directory_bytes(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def _timed_process(command: list[str]) -> float:
    """Wall seconds of a child process."""
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _ingest(source: Path, store_dir: Path, *extra: str) -> tuple[float, float, dict[str, object]]:
    """Wall seconds and peak RSS (MB) of `kubetrail ingest`, and the summary it printed."""
    shutil.rmtree(store_dir, ignore_errors=True)
    args = ["ingest", "--store", str(store_dir), "--no-progress", "-o", "json", *extra, str(source)]
    with tempfile.TemporaryFile() as out:
        run = run_module_measured("kubetrail", args, out)
        out.seek(0)
        summary: dict[str, object] = json.loads(out.read())
    return run.seconds, run.peak_mb, summary


def bench_ingest(source: Path, workdir: Path) -> list[BenchResult]:
    """`kubetrail ingest` (with and without detection) against a json.loads loop, alternated, best of N."""
    store_dir = workdir / "ingest"
    loop: list[float] = []
    ingest: list[float] = []
    plain: list[float] = []
    peaks: list[float] = []
    summary: dict[str, object] = {}
    for _ in range(INGEST_REPEATS):
        loop.append(_timed_process([sys.executable, "-c", JSON_LOOP, str(source)]))
        seconds, peak, summary = _ingest(source, store_dir)
        ingest.append(seconds)
        peaks.append(peak)
        plain.append(_ingest(source, workdir / "plain", "--no-detect")[0])
    events = int(str(summary["accepted"]))
    raw = source.stat().st_size
    data = _directory_bytes(store_dir / "data")
    gz = gzip_size(source)
    per_million = data * 1_000_000 / events / 1e6
    best_loop, best_ingest, best_plain = min(loop), min(ingest), min(plain)
    detail = {
        "events": events,
        "ndjson_bytes": raw,
        "alerts": summary.get("alerts"),
        "ingest_seconds": [round(value, 2) for value in ingest],
        "no_detect_seconds": [round(value, 2) for value in plain],
        "json_loads_loop_seconds": [round(value, 2) for value in loop],
        "peak_rss_mb": [round(value, 1) for value in peaks],
    }
    return [
        BenchResult(NAME, "ingest seconds", best_ingest, "s", higher_is_better=False, detail=detail),
        BenchResult(NAME, "ingest events/s", events / best_ingest, "events/s", detail=detail),
        BenchResult(NAME, "json.loads loop seconds (same run)", best_loop, "s", higher_is_better=False, detail=detail),
        BenchResult(
            NAME,
            "ingest speed vs json.loads loop",
            best_loop / best_ingest,
            "x",
            target=TARGET_INGEST_RATIO,
            detail={**detail, "baseline_seconds": round(best_loop, 2), "seconds": round(best_ingest, 2)},
        ),
        BenchResult(
            NAME,
            "ingest --no-detect speed vs json.loads loop",
            best_loop / best_plain,
            "x",
            detail={**detail, "baseline_seconds": round(best_loop, 2), "seconds": round(best_plain, 2)},
        ),
        BenchResult(
            NAME,
            f"ingest peak RSS at {events:,} events",
            max(peaks),
            "MB",
            target=TARGET_PEAK_MB,
            higher_is_better=False,
            detail=detail,
        ),
        BenchResult(
            NAME,
            "store size vs NDJSON",
            100.0 * data / raw,
            "%",
            target=TARGET_STORE_PERCENT,
            higher_is_better=False,
            detail={
                "store_bytes": data,
                "ndjson_bytes": raw,
                "gzip_bytes": gz,
                "gzip_percent": round(100 * gz / raw, 2),
            },
        ),
        BenchResult(
            NAME,
            "store MB per 1M events",
            per_million,
            "MB",
            higher_is_better=False,
            detail={
                "ndjson_mb_per_1m": round(raw * 1_000_000 / events / 1e6, 1),
                "gzip_mb_per_1m": round(gz * 1_000_000 / events / 1e6, 1),
            },
        ),
    ]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_tail(source: Path, workdir: Path, count: int) -> list[BenchResult]:
    """RSS growth per acknowledged, unsealed event (sealing held back): the slope between a quarter and all of
    `count` events appended as the intake decodes them, against the JSON bytes per event."""
    options = StoreOptions(
        background_seal=False, segment_events=10**9, segment_bytes=1 << 40, max_unsealed_events=10**9,
        max_unsealed_bytes=1 << 40,
    )  # fmt: skip
    json_bytes = 0
    marks: list[tuple[int, int]] = []
    with Store.open(workdir / "tail", options) as store:
        appended = 0
        for batch in read_path(source):
            events, raws = batch.events[: count - appended], batch.raws[: count - appended]
            store.append("bench", events, raws)
            json_bytes += sum(len(raw or b"") for raw in raws)
            appended += len(events)
            del batch, events, raws
            if (not marks and appended >= count // 4) or appended >= count:
                gc.collect()
                marks.append((store.stats().tail_rows, _rss_bytes()))
            if appended >= count:
                break
        store.close(seal=False)
    (rows_at_quarter, rss_at_quarter), (rows, rss) = marks[0], marks[-1]
    per_event = (rss - rss_at_quarter) / max(1, rows - rows_at_quarter)
    per_json = json_bytes / max(1, rows)
    return [
        BenchResult(
            NAME,
            "unsealed tail bytes per event (RSS growth)",
            per_event,
            "B",
            higher_is_better=False,
            detail={
                "events": rows,
                "json_bytes_per_event": round(per_json),
                "ratio_to_json": round(per_event / per_json, 2),
                "bound": "StoreOptions.max_unsealed_bytes of JSON (ingest: 48 MiB) and max_unsealed_events",
            },
        )
    ]


def _load(source: Path, count: int) -> tuple[list[Event], list[bytes | None]]:
    events: list[Event] = []
    raws: list[bytes | None] = []
    for batch in read_path(source):
        events.extend(batch.events)
        raws.extend(batch.raws)
        if len(events) >= count:
            break
    return events[:count], raws[:count]


def bench_wal(source: Path, workdir: Path, count: int) -> list[BenchResult]:
    events, raws = _load(source, count)
    batches = [
        (events[start : start + WAL_BATCH], raws[start : start + WAL_BATCH])
        for start in range(0, len(events), WAL_BATCH)
    ]
    latencies: list[float] = []
    lock = threading.Lock()
    with Store.open(workdir / "wal") as store:

        def writer(index: int) -> None:
            mine: list[float] = []
            for batch_events, batch_raws in batches[index::WAL_THREADS]:
                start = time.perf_counter()
                store.append("bench", batch_events, batch_raws)
                mine.append(time.perf_counter() - start)
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=writer, args=(index,)) for index in range(WAL_THREADS)]
        wall = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - wall
        fsyncs = len(store.fsync_seconds)
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    detail = {
        "events": len(events),
        "batch": WAL_BATCH,
        "threads": WAL_THREADS,
        "appends": len(latencies),
        "fsyncs": fsyncs,
        "p50_ms": round(1000 * statistics.median(ordered), 2),
    }
    return [
        BenchResult(
            NAME, "fsync'd appends events/s", len(events) / wall, "events/s", target=TARGET_ACK_RATE, detail=detail
        ),
        BenchResult(NAME, "append p99 latency", 1000 * p99, "ms", higher_is_better=False, detail=detail),
    ]


def run() -> list[BenchResult]:
    ingest_count = scaled(INGEST_EVENTS)
    source = corpus_file(ingest_count)
    workdir = Path(tempfile.mkdtemp(prefix="kubetrail-bench-store-"))
    try:
        results = bench_ingest(source, workdir)
        results.extend(bench_tail(source, workdir, min(scaled(TAIL_EVENTS), ingest_count)))
        results.extend(bench_wal(source, workdir, min(scaled(WAL_EVENTS), ingest_count)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


if __name__ == "__main__":
    for result in run():
        print(f"{result.metric}: {result.value:,.2f} {result.unit} (target {result.target}) {result.detail}")
