"""Receiver throughput: a real `kubetrail serve` on loopback, acknowledging only after the WAL fsync.

Several client threads (one keep-alive connection each) POST EventLists of 400 realistic events (the
apiserver's default `--audit-webhook-batch-max-size`) as fast as they are answered. Reported: events/s
acknowledged (every answer must be 200), and the p50/p99 latency of one batch. Target: ≥ 20k events/s on a
2-core machine, where the clients share the cores with the server. Run alone: `python -m bench receiver`.

Before/after in the same run: the receiver of an earlier commit (`KUBETRAIL_BENCH_BASELINE_REF`, default the
last commit before the one intake, whose receiver decoded each item in several passes) is extracted with
`git archive` and measured on the same bodies, alternating with the current one (best of two runs each).
Skipped outside a git checkout.
"""

from __future__ import annotations

import http.client
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import BenchResult
from bench.corpus import write_realistic_ndjson

NAME = "receiver"
EVENTS = 200_000
BATCH = 400
CLIENTS = 4
TARGET_EVENTS_PER_SECOND = 20_000
PROJECT = Path(__file__).resolve().parent.parent
BASELINE_REF = os.environ.get("KUBETRAIL_BENCH_BASELINE_REF", "d1fc949")


def scaled(count: int) -> int:
    return max(4 * BATCH, int(count * float(os.environ.get("KUBETRAIL_BENCH_SCALE", "1"))))


def batches(count: int) -> list[bytes]:
    """EventList bodies of BATCH events each, joined from the shared corpus's JSON lines."""
    lines = write_realistic_ndjson(None, EVENTS).read_bytes().splitlines()[:count]
    head = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":['
    return [head + b",".join(lines[start : start + BATCH]) + b"]}" for start in range(0, len(lines), BATCH)]


def baseline_tree(folder: Path) -> Path | None:
    """The sources of BASELINE_REF under `folder` (None when there is no git checkout or no such commit)."""
    archive = subprocess.run(
        ["git", "-C", str(PROJECT), "archive", BASELINE_REF, "src"], capture_output=True, check=False
    )
    if archive.returncode != 0:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder / "src"


def start_server(store: Path, source: Path | None = None) -> tuple[subprocess.Popen[str], str]:
    """`kubetrail serve` on a free loopback port: this checkout's, or the one whose sources are at `source`."""
    command = [sys.executable, "-m", "kubetrail.cli.main", "serve", "--store", str(store)]
    environment = dict(os.environ)
    if source is not None:
        environment["PYTHONPATH"] = str(source)
    process = subprocess.Popen(
        [*command, "--listen", "127.0.0.1:0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT if source is None else source,
        env=environment,
    )
    assert process.stdout is not None
    for line in process.stdout:
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            return process, found.group(1)
    raise RuntimeError(f"serve exited with {process.wait()}")


def post_all(url: str, bodies: list[bytes], clients: int) -> tuple[float, list[float], int]:
    """Wall seconds, per-batch latencies, and the number of non-200 answers."""
    parts = urlsplit(url)
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
        mine: list[float] = []
        bad = 0
        for body in bodies[index::clients]:
            started = time.perf_counter()
            connection.request("POST", "/audit/bench", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            bad += response.status != 200
        connection.close()
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, failures[0]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


_DECODE_SCRIPT = """
import pickle, sys, time
bodies = pickle.load(open(sys.argv[1], "rb"))
try:
    from kubetrail.intake import decode_body
    decode = lambda body: decode_body(body, source="bench", max_event_bytes=256 << 10).events
except ImportError:
    from kubetrail.collect.receiver import split_body
    decode = lambda body: split_body(body).events
best = float("inf")
for _ in range(5):
    started = time.perf_counter()
    count = sum(len(decode(body)) for body in bodies)
    best = min(best, time.perf_counter() - started)
print(count / best)
"""


def decode_rate(bodies_file: Path, source: Path | None) -> float:
    """Events/s the receiver's body decoding reaches on one core (this checkout's, or the tree at `source`)."""
    environment = dict(os.environ)
    if source is not None:
        environment["PYTHONPATH"] = str(source)
    completed = subprocess.run(
        [sys.executable, "-c", _DECODE_SCRIPT, str(bodies_file)],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT if source is None else source,
        env=environment,
    )
    return float(completed.stdout.strip())


def measure(bodies: list[bytes], store: Path, source: Path | None = None) -> tuple[float, list[float]]:
    """Seconds to post every body (after a warm-up) to a fresh serve, and the batch latencies."""
    process, url = start_server(store, source)
    try:
        post_all(url, bodies[: 2 * CLIENTS], CLIENTS)
        seconds, latencies, failures = post_all(url, bodies, CLIENTS)
    finally:
        process.terminate()
        process.wait(timeout=120)
    if failures:
        raise RuntimeError(f"{failures} batches were not answered 200")
    return seconds, latencies


def run() -> list[BenchResult]:
    count = scaled(EVENTS)
    bodies = batches(count)
    events = sum(body.count(b'"auditID"') for body in bodies)
    folder = Path(tempfile.mkdtemp(prefix="kubetrail-bench-receiver-"))
    before: float | None = None
    decode_before: float | None = None
    try:
        source = baseline_tree(folder / "baseline")
        bodies_file = folder / "bodies.pickle"
        bodies_file.write_bytes(pickle.dumps(bodies))
        seconds, latencies = measure(bodies, folder / "store")
        decode_after = decode_rate(bodies_file, None)
        if source is not None:
            # alternate, best of two each: the machine's state drifts during a run (and the first run warms it)
            before_seconds, _ = measure(bodies, folder / "store-before", source)
            again, again_latencies = measure(bodies, folder / "store-again")
            if again < seconds:
                seconds, latencies = again, again_latencies
            before_seconds = min(before_seconds, measure(bodies, folder / "store-before-again", source)[0])
            before = events / before_seconds
            decode_before = decode_rate(bodies_file, source)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    detail = {
        "events": events,
        "batch_events": BATCH,
        "clients": CLIENTS,
        "request_bytes": round(sum(map(len, bodies)) / len(bodies)),
        "seconds": round(seconds, 2),
        "cpus": os.cpu_count(),
        "note": "clients run on the same machine; every answer waited for the WAL fsync",
    }
    after = events / seconds
    comparison = [BenchResult(NAME, "body decoding alone, one core", decode_after, "events/s")]
    if before is not None and decode_before is not None:
        comparison += [
            BenchResult(NAME, f"events/s acknowledged by {BASELINE_REF} (before, same run)", before, "events/s"),
            BenchResult(NAME, f"acknowledged: now / {BASELINE_REF}", after / before, "x"),
            BenchResult(NAME, f"body decoding alone by {BASELINE_REF}", decode_before, "events/s"),
            BenchResult(NAME, f"decoding: now / {BASELINE_REF}", decode_after / decode_before, "x"),
        ]
    return [
        BenchResult(
            NAME,
            "events/s acknowledged (fsync'd, 400 per batch)",
            after,
            "events/s",
            target=TARGET_EVENTS_PER_SECOND,
            detail=detail,
        ),
        *comparison,
        BenchResult(NAME, "batch latency p50", percentile(latencies, 0.5) * 1000, "ms", detail=detail),
        BenchResult(NAME, "batch latency p99", percentile(latencies, 0.99) * 1000, "ms", higher_is_better=False),
    ]


if __name__ == "__main__":
    for result in run():
        print(f"{result.metric}: {result.value:,.1f} {result.unit}")
