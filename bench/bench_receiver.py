"""Receiver throughput: a real `kubetrail serve` on loopback, acknowledging only after the WAL fsync.

Several client threads (one keep-alive connection each) POST EventLists of 400 realistic events (the
apiserver's default `--audit-webhook-batch-max-size`) as fast as they are answered. Reported: events/s
acknowledged (every answer must be 200), the p50/p99 latency of one batch, the WAL fsyncs per second and per
request, the server's CPU time per event (all its processes, and its own process alone), and how long detection
(in its own process, fed only what is durable) took after the last acknowledgement to catch up. The baseline,
run on the same bodies in the same run, is a bare Starlette + uvicorn app on serve's server stack that only
decodes each EventList with msgspec (`bench/bare_receiver.py`). Targets: serve (with the WAL fsync and
detection) at least 60% of the baseline's events/s, and its p99 at most twice the baseline's. The clients share
the machine's cores with the server. Run alone: `python -m bench receiver`.

Before/after in the same run: the receiver of an earlier commit (`KUBETRAIL_BENCH_BASELINE_REF`, default the
last commit before the one intake, whose receiver decoded each item in several passes) is extracted with
`git archive` and measured on the same bodies, alternating with the current one (best of two runs each).
Skipped outside a git checkout.
"""

from __future__ import annotations

import contextlib
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
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import BenchResult, sources_at
from bench.corpus import write_realistic_ndjson

NAME = "receiver"
EVENTS = 200_000
BATCH = 400
CLIENTS = 8
TARGET_RATIO = 0.6
TARGET_P99_RATIO = 2.0
PROJECT = Path(__file__).resolve().parent.parent
BASELINE_REF = os.environ.get("KUBETRAIL_BENCH_BASELINE_REF", "d1fc949")


def scaled(count: int) -> int:
    return max(4 * BATCH, int(count * float(os.environ.get("KUBETRAIL_BENCH_SCALE", "1"))))


def batches(count: int) -> list[bytes]:
    """EventList bodies of BATCH events each, joined from the shared corpus's JSON lines."""
    lines = write_realistic_ndjson(None, EVENTS).read_bytes().splitlines()[:count]
    head = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":['
    return [head + b",".join(lines[start : start + BATCH]) + b"]}" for start in range(0, len(lines), BATCH)]


def start_process(command: list[str], source: Path | None = None) -> tuple[subprocess.Popen[str], str]:
    """A server process on a free loopback port (this checkout's code, or the tree at `source`), and its URL."""
    environment = dict(os.environ)
    if source is not None:
        environment["PYTHONPATH"] = str(source)
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, cwd=PROJECT if source is None else source, env=environment
    )
    assert process.stdout is not None
    for line in process.stdout:
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            return process, found.group(1)
    raise RuntimeError(f"{command[2:4]} exited with {process.wait()}")


def serve_command(store: Path) -> list[str]:
    return [sys.executable, "-m", "kubetrail.cli.main", "serve", "--store", str(store), "--listen", "127.0.0.1:0",
            "--log-level", "warning"]  # fmt: skip


BARE_COMMAND = [sys.executable, "-m", "bench.bare_receiver"]


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


@dataclass
class Run:
    """One server's run: wall seconds, batch latencies, and the WAL fsyncs its /metrics counted (serve only)."""

    seconds: float
    latencies: list[float]
    fsyncs: float | None = None
    cpu_seconds: float = 0.0
    """CPU time (user + system) the server process and its descendants spent on the measured requests."""
    own_cpu_seconds: float = 0.0
    """The same for the server process alone (its event loop, WAL and sealing threads)."""
    catch_up: float | None = None
    """Seconds from the last acknowledgement until detection's backlog was empty (serve only)."""


def _metric(url: str, name: str) -> float | None:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def _fsyncs(url: str) -> float | None:
    return _metric(url, "kubetrail_wal_fsync_seconds_count")


def _catch_up(url: str, limit: float = 600.0) -> float | None:
    """Seconds until detection's backlog is empty (None when this serve reports no backlog)."""
    started = time.perf_counter()
    while True:
        backlog = _metric(url, "kubetrail_detection_backlog_events")
        if backlog is None:
            return None
        if backlog == 0 or time.perf_counter() - started > limit:
            return time.perf_counter() - started
        time.sleep(0.05)


def _cpu_seconds(pid: int, *, descendants: bool = True) -> float:
    """User + system CPU seconds of a process and (unless not `descendants`) of its live descendants (serve's
    detection process is one), from /proc (0 where there is none)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pending = [pid]
    while pending:
        each = pending.pop()
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            tasks = list(Path(f"/proc/{each}/task").iterdir())
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
        for task in tasks if descendants else ():
            with contextlib.suppress(OSError):
                pending.extend(int(child) for child in (task / "children").read_text().split())
    return total


def measure(bodies: list[bytes], command: list[str], source: Path | None = None) -> Run:
    """Post every body (after a warm-up) to a fresh server started by `command`."""
    process, url = start_process(command, source)
    try:
        post_all(url, bodies[: 2 * CLIENTS], CLIENTS)
        before = _fsyncs(url) if "serve" in command else None
        cpu, own = _cpu_seconds(process.pid), _cpu_seconds(process.pid, descendants=False)
        seconds, latencies, failures = post_all(url, bodies, CLIENTS)
        cpu, own = _cpu_seconds(process.pid) - cpu, _cpu_seconds(process.pid, descendants=False) - own
        after = _fsyncs(url) if "serve" in command else None
        catch_up = _catch_up(url) if "serve" in command else None
    finally:
        process.terminate()
        process.wait(timeout=120)
    if failures:
        raise RuntimeError(f"{failures} batches were not answered 200")
    fsyncs = after - before if after is not None and before is not None else None
    return Run(seconds, latencies, fsyncs, cpu, own, catch_up)


def best(first: Run, second: Run) -> Run:
    return first if first.seconds <= second.seconds else second


def run() -> list[BenchResult]:
    count = scaled(EVENTS)
    bodies = batches(count)
    events = sum(body.count(b'"auditID"') for body in bodies)
    requests = len(bodies)
    folder = Path(tempfile.mkdtemp(prefix="kubetrail-bench-receiver-"))
    before: Run | None = None
    decode_before: float | None = None
    try:
        source = sources_at(BASELINE_REF, folder / "baseline")
        bodies_file = folder / "bodies.pickle"
        bodies_file.write_bytes(pickle.dumps(bodies))
        # alternate, best of two each: the machine's state drifts during a run (and the first run warms it)
        bare = measure(bodies, BARE_COMMAND)
        now = measure(bodies, serve_command(folder / "store-1"))
        if source is not None:
            before = measure(bodies, serve_command(folder / "before-1"), source)
        bare = best(bare, measure(bodies, BARE_COMMAND))
        now = best(now, measure(bodies, serve_command(folder / "store-2")))
        if source is not None and before is not None:
            before = best(before, measure(bodies, serve_command(folder / "before-2"), source))
            decode_before = decode_rate(bodies_file, source)
        decode_after = decode_rate(bodies_file, None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    detail = {
        "events": events,
        "requests": requests,
        "batch_events": BATCH,
        "clients": CLIENTS,
        "request_bytes": round(sum(map(len, bodies)) / len(bodies)),
        "cpus": os.cpu_count(),
        "note": "clients run on the same machine; every serve answer waited for the WAL fsync; detection on",
    }
    rate, bare_rate = events / now.seconds, events / bare.seconds
    p99, bare_p99 = percentile(now.latencies, 0.99), percentile(bare.latencies, 0.99)
    results = [
        BenchResult(NAME, "serve: events/s acknowledged (fsync'd, detection on)", rate, "events/s", detail=detail),
        BenchResult(NAME, "bare Starlette + uvicorn, msgspec decode only (baseline)", bare_rate, "events/s"),
        BenchResult(NAME, "serve / baseline, events/s", rate / bare_rate, "x", target=TARGET_RATIO),
        BenchResult(NAME, "serve batch latency p99", p99 * 1000, "ms", higher_is_better=False),
        BenchResult(NAME, "baseline batch latency p99", bare_p99 * 1000, "ms", higher_is_better=False),
        BenchResult(
            NAME, "serve / baseline, p99", p99 / bare_p99, "x", target=TARGET_P99_RATIO, higher_is_better=False
        ),
        BenchResult(
            NAME, "serve batch latency p50", percentile(now.latencies, 0.5) * 1000, "ms", higher_is_better=False
        ),
    ]
    if now.fsyncs is not None:
        results += [
            BenchResult(NAME, "WAL fsyncs per request", now.fsyncs / requests, "x", higher_is_better=False),
            BenchResult(NAME, "WAL fsyncs per second", now.fsyncs / now.seconds, "1/s", higher_is_better=False),
        ]
    results += [
        BenchResult(
            NAME, "serve CPU per event, all processes", now.cpu_seconds / events * 1e6, "µs", higher_is_better=False
        ),
        BenchResult(
            NAME,
            "serve CPU per event, receiver process",
            now.own_cpu_seconds / events * 1e6,
            "µs",
            higher_is_better=False,
        ),
        BenchResult(NAME, "baseline CPU per event", bare.cpu_seconds / events * 1e6, "µs", higher_is_better=False),
    ]
    if now.catch_up is not None:
        results.append(
            BenchResult(NAME, "detection caught up after the last ack", now.catch_up, "s", higher_is_better=False)
        )
    results.append(BenchResult(NAME, "body decoding alone, one core", decode_after, "events/s"))
    if before is not None and decode_before is not None:
        results += [
            BenchResult(NAME, f"serve at {BASELINE_REF} (before, same run)", events / before.seconds, "events/s"),
            BenchResult(NAME, f"serve: now / {BASELINE_REF}", before.seconds / now.seconds, "x"),
            BenchResult(NAME, f"body decoding alone at {BASELINE_REF}", decode_before, "events/s"),
            BenchResult(NAME, f"decoding: now / {BASELINE_REF}", decode_after / decode_before, "x"),
        ]
    return results


if __name__ == "__main__":
    for result in run():
        print(f"{result.metric}: {result.value:,.1f} {result.unit}")
