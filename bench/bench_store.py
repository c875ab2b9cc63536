"""The durable store: bulk ingest, size on disk, and fsync'd group-commit appends.

- ingest: `kubetrail ingest`'s pipeline (read, decode, append to the WAL, seal to Parquet) over a
  1M-event realistic NDJSON file; events/s (wall clock) and per CPU second.
- size: the sealed store per 1M events against the raw NDJSON and `gzip -6` of it; target ≤ 15% of NDJSON.
- wal: several writer threads appending batches of 400 events, each append acknowledged only after its
  fsync (group commit); events/s acknowledged (target ≥ 20k/s on 2 cores) and p50/p99 append latency.

`KUBETRAIL_BENCH_SCALE=0.1` shrinks every count. Run alone: `python -m bench.bench_store`.
"""

from __future__ import annotations

import gzip
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.common import BenchResult
from kubetrail.cli.ingest import Summary, prefetch_batches, store_batch
from kubetrail.intake import read_path
from kubetrail.model import Event
from kubetrail.store import Store

NAME = "store"
INGEST_EVENTS = 1_000_000
WAL_EVENTS = 200_000
WAL_BATCH = 400
WAL_THREADS = 4
TARGET_STORE_PERCENT = 15.0
TARGET_ACK_RATE = 20_000.0


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


def bench_ingest(source: Path, workdir: Path) -> list[BenchResult]:
    store_dir = workdir / "ingest"
    summary = Summary(files=1)
    wall = time.perf_counter()
    cpu = time.process_time()
    with Store.open(store_dir) as store:
        for _path, batch in prefetch_batches([source], "auto"):
            store_batch(store, batch, "bench", summary)
        store.seal()
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    events = summary.accepted
    raw = source.stat().st_size
    data = _directory_bytes(store_dir / "data")
    gz = gzip_size(source)
    per_million = data * 1_000_000 / events / 1e6
    detail = {"events": events, "ndjson_bytes": raw, "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2)}
    return [
        BenchResult(NAME, "ingest events/s", events / wall, "events/s", detail=detail),
        BenchResult(NAME, "ingest events per CPU second", events / cpu, "events/s", detail=detail),
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
        results = bench_wal(source, workdir, min(scaled(WAL_EVENTS), ingest_count))
        results.extend(bench_ingest(source, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


if __name__ == "__main__":
    for result in run():
        print(f"{result.metric}: {result.value:,.2f} {result.unit} (target {result.target}) {result.detail}")
