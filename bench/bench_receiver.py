"""Receiver throughput: a real `kubetrail serve` on loopback, acknowledging only after the WAL fsync.

Several client threads (one keep-alive connection each) POST EventLists of 400 realistic events (the
apiserver's default `--audit-webhook-batch-max-size`) as fast as they are answered. Reported: events/s
acknowledged (every answer must be 200), and the p50/p99 latency of one batch. Target: ≥ 20k events/s on a
2-core machine, where the clients share the cores with the server. Run alone: `python -m bench receiver`.
"""

from __future__ import annotations

import http.client
import os
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


def scaled(count: int) -> int:
    return max(4 * BATCH, int(count * float(os.environ.get("KUBETRAIL_BENCH_SCALE", "1"))))


def batches(count: int) -> list[bytes]:
    """EventList bodies of BATCH events each, joined from the shared corpus's JSON lines."""
    lines = write_realistic_ndjson(None, EVENTS).read_bytes().splitlines()[:count]
    head = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":['
    return [head + b",".join(lines[start : start + BATCH]) + b"]}" for start in range(0, len(lines), BATCH)]


def start_server(store: Path) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "kubetrail.cli.main", "serve", "--store", str(store)]
    process = subprocess.Popen(
        [*command, "--listen", "127.0.0.1:0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT,
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


def run() -> list[BenchResult]:
    count = scaled(EVENTS)
    bodies = batches(count)
    events = sum(body.count(b'"auditID"') for body in bodies)
    folder = Path(tempfile.mkdtemp(prefix="kubetrail-bench-receiver-"))
    process, url = start_server(folder / "store")
    try:
        post_all(url, bodies[: 2 * CLIENTS], CLIENTS)
        seconds, latencies, failures = post_all(url, bodies, CLIENTS)
    finally:
        process.terminate()
        process.wait(timeout=120)
        shutil.rmtree(folder, ignore_errors=True)
    if failures:
        raise RuntimeError(f"{failures} batches were not answered 200")
    detail = {
        "events": events,
        "batch_events": BATCH,
        "clients": CLIENTS,
        "request_bytes": round(sum(map(len, bodies)) / len(bodies)),
        "seconds": round(seconds, 2),
        "cpus": os.cpu_count(),
        "note": "clients run on the same machine; every answer waited for the WAL fsync",
    }
    return [
        BenchResult(
            NAME,
            "events/s acknowledged (fsync'd, 400 per batch)",
            events / seconds,
            "events/s",
            target=TARGET_EVENTS_PER_SECOND,
            detail=detail,
        ),
        BenchResult(NAME, "batch latency p50", percentile(latencies, 0.5) * 1000, "ms", detail=detail),
        BenchResult(NAME, "batch latency p99", percentile(latencies, 0.99) * 1000, "ms", higher_is_better=False),
    ]


if __name__ == "__main__":
    for result in run():
        print(f"{result.metric}: {result.value:,.1f} {result.unit}")
