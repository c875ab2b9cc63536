"""The four seed investigations, timed side by side with Debian's jq on the same events.

- store answer: the matching `kubetrail investigate` command's answer (its summary and its table of the
  events' columns) from a store of N realistic events (`kubetrail ingest`'s pipeline, cached under
  bench/data/), on an open connection as the web UI keeps one. Target: at least 100 times faster than jq
  printing the events. `store_cold_s` adds opening the store (a new DuckDB database), as one CLI run pays.
- store events: the matching events' JSON from the store, as `kubetrail query -o ndjson` prints them (no
  target: the JSON column must be decompressed for every row group holding a match).
- file: the events' JSON from the NDJSON file read in place (`kubetrail query --file -o ndjson`).
  Target: at least 10 times faster than jq.

Each side must return the same number of events (the jq differential test checks the events themselves).
N is 1M; `KUBETRAIL_BENCH_SCALE=0.1` or `KUBETRAIL_BENCH_QUERY_EVENTS=200000` shrink it (jq alone takes
about 30 s per query on 1M events). Run alone: `python -m bench.bench_query`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from bench.common import BenchResult
from bench.corpus import DATA_DIR, write_realistic_ndjson
from kubetrail.cli.ingest import Summary, prefetch_batches, store_batch
from kubetrail.investigate import Report, exec_sessions, forbidden, rbac_changes, secrets
from kubetrail.query.source import Source, Window, open_files, open_store
from kubetrail.store import Store

NAME = "query"
EVENTS = 1_000_000
TARGET_STORE_SPEEDUP = 100.0
TARGET_FILE_SPEEDUP = 10.0
RBAC_WRITES = '(.verb=="create" or .verb=="update" or .verb=="patch" or .verb=="delete")'


def event_count() -> int:
    explicit = os.environ.get("KUBETRAIL_BENCH_QUERY_EVENTS")
    if explicit:
        return max(1000, int(explicit))
    return max(1000, int(EVENTS * float(os.environ.get("KUBETRAIL_BENCH_SCALE", "1"))))


Investigation = Callable[[Source], Report]


def seed_queries(since: str) -> list[tuple[str, str, str, Investigation]]:
    """(name, kubetrail filter, jq program, investigation) for the seeds' four questions; `since` bounds
    "the last hour"."""
    return [
        (
            "secrets read in the last hour",
            f"resource=secrets verb in (get,list,watch) since={since}",
            f'select(.requestReceivedTimestamp >= "{since}" and .objectRef.resource=="secrets" and '
            '(.verb=="get" or .verb=="list" or .verb=="watch"))',
            lambda source: secrets(source, Window(since=since), events=False),
        ),
        (
            "403s",
            "code=403",
            "select(.responseStatus.code==403)",
            lambda source: forbidden(source, events=False),
        ),
        (
            "exec into pods",
            "resource=pods subresource=exec",
            'select(.objectRef.resource=="pods" and .objectRef.subresource=="exec")',
            lambda source: exec_sessions(source, subresources=("exec",), events=False),
        ),
        (
            "RBAC modifications",
            "apigroup=rbac.authorization.k8s.io verb in (create,update,patch,delete)",
            f'select(.objectRef.apiGroup=="rbac.authorization.k8s.io" and {RBAC_WRITES})',
            lambda source: rbac_changes(source, events=False),
        ),
    ]


def build_store(ndjson: Path) -> Path:
    """A sealed store of the NDJSON file's events, rebuilt only when the file changed."""
    directory = DATA_DIR / f"query-store-{ndjson.stem}"
    key_file = directory.with_name(directory.name + ".key")
    stat = ndjson.stat()
    key = f"{ndjson.name} {stat.st_size} {stat.st_mtime_ns}"
    if directory.exists() and key_file.exists() and key_file.read_text() == key:
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    summary = Summary(files=1)
    with Store.open(directory) as store:
        for _, batch in prefetch_batches([ndjson], "k8s"):
            store_batch(store, batch, "bench", summary)
        store.seal()
    key_file.write_text(key)
    return directory


def _events(source: Source, text: str) -> int:
    """Fetch the matching events' JSON and write them out, as `kubetrail query -o ndjson --limit 0` does."""
    table = source.select(text, columns=["event"])
    with open(os.devnull, "w") as sink:
        for line in table.column("event").to_pylist():
            sink.write(line + "\n")
    return int(table.num_rows)


def _best(work: Callable[[], int], repeat: int) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = work()
        best = min(best, time.perf_counter() - start)
    return best, count


def _events_of(opener: Callable[[], Source], text: str) -> Callable[[], int]:
    def work() -> int:
        with opener() as source:
            return _events(source, text)

    return work


def _warm(source: Source, investigation: Investigation) -> Callable[[], int]:
    def work() -> int:
        return int(investigation(source).events.num_rows)

    return work


def _answer_of(opener: Callable[[], Source], investigation: Investigation) -> Callable[[], int]:
    def work() -> int:
        with opener() as source:
            return int(investigation(source).events.num_rows)

    return work


def _time_jq(program: str, path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    output = subprocess.run(["jq", "-c", program, str(path)], check=True, capture_output=True).stdout
    return time.perf_counter() - start, output.count(b"\n")


def run() -> list[BenchResult]:
    if shutil.which("jq") is None:
        raise RuntimeError("jq is not installed (apt-get install jq)")
    count = event_count()
    ndjson = write_realistic_ndjson(None, count)
    started = time.perf_counter()
    store_dir = build_store(ndjson)
    build_seconds = time.perf_counter() - started
    with open_store(store_dir) as source:
        newest = source.sql("SELECT max(time) AS t FROM events").column("t")[0].as_py()
    since = (newest.replace(microsecond=0) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    results: list[BenchResult] = []
    totals = {"jq": 0.0, "store_answer": 0.0, "store_events": 0.0, "file": 0.0}

    def store() -> Source:
        return open_store(store_dir)

    def files() -> Source:
        return open_files([ndjson])

    for name, text, program, investigation in seed_queries(since):
        jq_seconds, jq_count = _time_jq(program, ndjson)
        cold_seconds, _ = _best(_answer_of(store, investigation), 3)
        with store() as opened:
            answer_seconds, answer_count = _best(_warm(opened, investigation), 5)
        events_seconds, events_count = _best(_events_of(store, text), 3)
        file_seconds, file_count = _best(_events_of(files, text), 2)
        if not jq_count == answer_count == events_count == file_count:
            raise RuntimeError(
                f"{name}: jq {jq_count}, answer {answer_count}, store {events_count}, file {file_count} events"
            )
        totals["jq"] += jq_seconds
        totals["store_answer"] += answer_seconds
        totals["store_events"] += events_seconds
        totals["file"] += file_seconds
        detail = {
            "events": count,
            "matched": jq_count,
            "filter": text,
            "jq_s": round(jq_seconds, 3),
            "store_answer_s": round(answer_seconds, 4),
            "store_cold_s": round(cold_seconds, 4),
            "store_events_s": round(events_seconds, 4),
            "file_s": round(file_seconds, 3),
        }
        results.append(
            BenchResult(
                NAME,
                f"{name}: store answer vs jq",
                jq_seconds / answer_seconds,
                "x",
                TARGET_STORE_SPEEDUP,
                detail=detail,
            )
        )
        results.append(
            BenchResult(NAME, f"{name}: store events vs jq", jq_seconds / events_seconds, "x", detail=detail)
        )
        results.append(
            BenchResult(NAME, f"{name}: file vs jq", jq_seconds / file_seconds, "x", TARGET_FILE_SPEEDUP, detail=detail)
        )
    overall = {
        "events": count,
        "ndjson_bytes": ndjson.stat().st_size,
        "store_build_s": round(build_seconds, 1),
        **{f"{key}_total_s": round(value, 3) for key, value in totals.items()},
    }
    for label, key, target in (
        ("store answer", "store_answer", TARGET_STORE_SPEEDUP),
        ("store events", "store_events", None),
        ("file", "file", TARGET_FILE_SPEEDUP),
    ):
        results.append(
            BenchResult(NAME, f"four queries: {label} vs jq", totals["jq"] / totals[key], "x", target, detail=overall)
        )
    return results


if __name__ == "__main__":
    for result in run():
        print(f"{result.metric}: {result.value:,.1f}{result.unit} (target {result.target}) {result.detail}")
