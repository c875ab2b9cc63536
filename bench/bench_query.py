"""The seeds' four questions from the command line, whole process against whole process, beside Debian's jq.

For each question, three commands print the matching events to a file, each timed as a subprocess (wall
clock, interpreter start-up included), alternated and best of N:

- jq: `jq -c 'select(…)' FILE` — the baseline;
- file: `kubetrail query --file FILE 'FILTER' -o ndjson --limit 0` — target: at least 20 times faster;
- store: `kubetrail query --store DIR 'FILTER' -o ndjson --limit 0` over a store of the same events
  (`kubetrail ingest`, cached under bench/data/) — target: at least 100 times faster.

All three must print the same events (compared by auditID and stage). The peak RSS of `query --file`
(os.wait4 of the child, its workers included) has a target of 300 MB, flat in the file's size.

N is 1M realistic events (bench.corpus, ~1 GB); `KUBETRAIL_BENCH_SCALE=0.1` or
`KUBETRAIL_BENCH_QUERY_EVENTS=200000` shrink it, `KUBETRAIL_BENCH_QUERY_REPEAT` sets N (default 3; jq runs
at most twice: about 30 s each on 1M events). Run alone: `python -m bench query`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import BenchResult, run_module_measured
from bench.corpus import DATA_DIR, write_realistic_ndjson

NAME = "query"
EVENTS = 1_000_000
TARGET_FILE_SPEEDUP = 20.0
TARGET_STORE_SPEEDUP = 100.0
TARGET_FILE_RSS_MB = 300.0
KUBETRAIL = [sys.executable, "-m", "kubetrail.cli.main"]
RBAC_WRITES = '(.verb=="create" or .verb=="update" or .verb=="patch" or .verb=="delete")'


def event_count() -> int:
    explicit = os.environ.get("KUBETRAIL_BENCH_QUERY_EVENTS")
    if explicit:
        return max(1000, int(explicit))
    return max(1000, int(EVENTS * float(os.environ.get("KUBETRAIL_BENCH_SCALE", "1"))))


def repeats() -> int:
    return max(1, int(os.environ.get("KUBETRAIL_BENCH_QUERY_REPEAT", "3")))


def seed_queries(since: str) -> list[tuple[str, str, str]]:
    """(name, kubetrail filter, jq program) for the seeds' four questions; `since` bounds "the last hour"."""
    return [
        (
            "secrets read in the last hour",
            f"resource=secrets verb in (get,list,watch) since={since}",
            f'select(.requestReceivedTimestamp >= "{since}" and .objectRef.resource=="secrets" and '
            '(.verb=="get" or .verb=="list" or .verb=="watch"))',
        ),
        (
            "exec sessions",
            "resource=pods subresource=exec",
            'select(.objectRef.resource=="pods" and .objectRef.subresource=="exec")',
        ),
        ("forbidden requests", "code=403", "select(.responseStatus.code==403)"),
        (
            "RBAC writes",
            "apigroup=rbac.authorization.k8s.io verb in (create,update,patch,delete)",
            f'select(.objectRef.apiGroup=="rbac.authorization.k8s.io" and {RBAC_WRITES})',
        ),
    ]


def build_store(ndjson: Path) -> Path:
    """A store of the NDJSON file's events (`kubetrail ingest`), rebuilt only when the file changed."""
    directory = DATA_DIR / f"query-store-{ndjson.stem}"
    key_file = directory.with_name(directory.name + ".key")
    stat = ndjson.stat()
    key = f"{ndjson.name} {stat.st_size} {stat.st_mtime_ns}"
    if directory.exists() and key_file.exists() and key_file.read_text() == key:
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    command = [*KUBETRAIL, "ingest", "--store", str(directory), "--cluster", "bench", "--no-detect", "--no-progress"]
    subprocess.run([*command, str(ndjson)], check=True, stdout=subprocess.DEVNULL)
    key_file.write_text(key)
    return directory


def _newest_time(ndjson: Path) -> datetime:
    """The newest requestReceivedTimestamp, from the file's last lines (the log is written in time order)."""
    with open(ndjson, "rb") as handle:
        handle.seek(max(0, ndjson.stat().st_size - 4 * 1024 * 1024))
        tail = handle.read().splitlines()[1:]
    times = [json.loads(line)["requestReceivedTimestamp"] for line in tail if line.strip()]
    return max(datetime.fromisoformat(text.replace("Z", "+00:00")) for text in times).astimezone(UTC)


def run_child(command: list[str], output: Path) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MB) of one command printing to `output`; fails on a non-zero
    exit. CPU time (user + system, its workers included) is less disturbed by other work on the machine.
    kubetrail's peak RSS is its own (`bench.common.run_module_measured`); jq's is not measured (0)."""
    with open(output, "wb") as sink:
        if command[: len(KUBETRAIL)] == KUBETRAIL:
            run = run_module_measured(KUBETRAIL[2], command[len(KUBETRAIL) :], sink)
            return run.seconds, run.cpu_seconds, run.peak_mb
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        error = process.stderr.read() if process.stderr is not None else b""
        if process.stderr is not None:
            process.stderr.close()
    if process.returncode != 0:
        raise RuntimeError(f"{command[:4]}… exited {process.returncode}: {error.decode(errors='replace')[-500:]}")
    return seconds, usage.ru_utime + usage.ru_stime, 0.0


def events_of(output: Path) -> Counter[tuple[str, str]]:
    """The printed events as (auditID, stage), for comparing the three commands."""
    with open(output, "rb") as handle:
        found = (json.loads(line) for line in handle if line.strip())
        return Counter((event["auditID"], event["stage"]) for event in found)


def run() -> list[BenchResult]:
    if shutil.which("jq") is None:
        raise RuntimeError("jq is not installed (apt-get install jq)")
    count = event_count()
    ndjson = write_realistic_ndjson(None, count)
    started = time.perf_counter()
    store_dir = build_store(ndjson)
    build_seconds = time.perf_counter() - started
    newest = _newest_time(ndjson)
    since = (newest.replace(microsecond=0) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    results: list[BenchResult] = []
    totals = {"jq": 0.0, "file": 0.0, "store": 0.0}
    peak_rss = 0.0
    repeat = repeats()
    with tempfile.TemporaryDirectory(prefix="kubetrail-bench-query-") as scratch:
        outputs = {side: Path(scratch) / f"{side}.ndjson" for side in totals}
        for name, text, program in seed_queries(since):
            commands = {
                "jq": ["jq", "-c", program, str(ndjson)],
                "file": [*KUBETRAIL, "query", "--file", str(ndjson), text, "-o", "ndjson", "--limit", "0"],
                "store": [*KUBETRAIL, "query", "--store", str(store_dir), text, "-o", "ndjson", "--limit", "0"],
            }
            best = dict.fromkeys(totals, float("inf"))
            cpu = dict.fromkeys(totals, float("inf"))
            for round_number in range(repeat):
                for side, command in commands.items():
                    if side == "jq" and round_number >= 2:
                        continue
                    seconds, cpu_seconds, rss = run_child(command, outputs[side])
                    best[side] = min(best[side], seconds)
                    cpu[side] = min(cpu[side], cpu_seconds)
                    if side == "file":
                        peak_rss = max(peak_rss, rss)
            found = {side: events_of(path) for side, path in outputs.items()}
            if not found["jq"] == found["file"] == found["store"]:
                sizes = {side: sum(events.values()) for side, events in found.items()}
                raise RuntimeError(f"{name}: the commands printed different events: {sizes}")
            for side in totals:
                totals[side] += best[side]
            detail = {
                "events": count,
                "matched": sum(found["jq"].values()),
                "filter": text,
                "jq_s": round(best["jq"], 3),
                "file_s": round(best["file"], 3),
                "store_s": round(best["store"], 3),
                **{f"{side}_cpu_s": round(value, 3) for side, value in cpu.items()},
                "file_cpu_ratio": round(cpu["jq"] / cpu["file"], 1),
                "store_cpu_ratio": round(cpu["jq"] / cpu["store"], 1),
            }
            for side, target in (("file", TARGET_FILE_SPEEDUP), ("store", TARGET_STORE_SPEEDUP)):
                seconds = f"jq {best['jq']:.2f} s, kubetrail {best[side]:.3f} s"
                ratio = best["jq"] / best[side]
                metric = f"{name}: --{side} vs jq ({seconds})"
                results.append(BenchResult(NAME, metric, ratio, "x", target, detail=detail))
                by_cpu = cpu["jq"] / cpu[side]
                print(f"  {metric}: {ratio:.1f}x (target {target:.0f}x; CPU time {by_cpu:.1f}x)", flush=True)
    overall = {
        "events": count,
        "ndjson_bytes": ndjson.stat().st_size,
        "store_build_s": round(build_seconds, 1),
        "repeat": repeat,
        **{f"{side}_total_s": round(value, 3) for side, value in totals.items()},
    }
    for side, target in (("file", TARGET_FILE_SPEEDUP), ("store", TARGET_STORE_SPEEDUP)):
        metric = f"four queries: --{side} vs jq (jq {totals['jq']:.2f} s, kubetrail {totals[side]:.3f} s)"
        results.append(BenchResult(NAME, metric, totals["jq"] / totals[side], "x", target, detail=overall))
    results.append(
        BenchResult(
            NAME,
            "query --file peak RSS",
            round(peak_rss, 1),
            "MB",
            TARGET_FILE_RSS_MB,
            higher_is_better=False,
            detail={"events": count, "ndjson_bytes": ndjson.stat().st_size},
        )
    )
    return results


if __name__ == "__main__":
    for result in run():
        verdict = "" if result.passed is None else ("pass" if result.passed else "MISSED")
        print(f"{result.metric}: {result.value:,.1f}{result.unit} (target {result.target}) {verdict} {result.detail}")
