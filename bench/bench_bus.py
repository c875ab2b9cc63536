"""Scale-out throughput: receivers, a JetStream node and 1 then 2 workers as separate processes, against the single
`serve` measured in the same run.

Every part is a real process on this machine: `nats-server -js`, 2 `kubetrail serve --bus` receivers, W
`kubetrail worker` processes (built-in detection on) writing one lake, and load clients posting EventLists of
BATCH events over keep-alive HTTP. For each W two phases run on the same processes:

- live: the clients post EVENTS events while the workers consume. Reported: events/s acknowledged to the clients,
  events/s into the lake (from the first POST until the workers have stored every event), and the CPU seconds the
  workers, the receivers and NATS spent — on a 2-core machine they all share the same two cores.
- backlog: the workers are paused (SIGSTOP), the clients post EVENTS other events (acknowledged from JetStream
  alone), then the workers resume and drain the stream, the receivers and clients idle. Reported per worker
  process: events/s into the lake over its busy time, against TARGET_PER_WORKER, and events per CPU second of
  the worker, which depends least on what else the machine runs.

"Into the lake" is what the workers' /metrics count as stored (appended and fsynced in the worker's WAL; sealing
to Parquet follows in the background); the lake is counted again with DuckDB at the end and must hold every event
once. The single `serve` baseline is its acknowledged events/s (it acknowledges after its own WAL fsync and
detects in the same process). The worker as it was at WORKER_BASELINE_REF runs the same phases with 1 worker.
Rounds alternate the setups; each figure is the best of ROUNDS. Skipped when nats-server is not installed.
Run alone: `python -m bench bus`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.bench_receiver import BATCH, post_all, serve_command, start_process
from bench.common import BenchResult, sources_at
from bench.corpus import write_realistic_ndjson

NAME = "bus"
EVENTS = 100_000
CLIENTS = 4
RECEIVERS = 2
ROUNDS = 2
PARTITIONS = 8  # the default of receivers and workers
WORKER_BASELINE_REF = os.environ.get("KUBETRAIL_BENCH_BUS_BASELINE_REF", "c9bad56")
"""The worker before batched stores and overlapped fetches, measured in the same run for comparison."""
TARGET_PER_WORKER = 30_000.0
PROJECT = Path(__file__).resolve().parent.parent
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
KUBETRAIL = [sys.executable, "-m", "kubetrail.cli.main"]
POLL_SECONDS = 0.05
HEAD = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":['


def _scaled(count: int) -> int:
    return max(4 * BATCH, int(count * float(os.environ.get("KUBETRAIL_BENCH_SCALE", "1"))))


def _bodies(count: int) -> tuple[list[bytes], list[bytes]]:
    """Two disjoint sets of EventList bodies of BATCH events (for the live and the backlog phase)."""
    lines = write_realistic_ndjson(None, 2 * EVENTS).read_bytes().splitlines()
    halves = (lines[:count], lines[EVENTS : EVENTS + count])
    return tuple(  # type: ignore[return-value]
        [HEAD + b",".join(half[start : start + BATCH]) + b"]}" for start in range(0, len(half), BATCH)]
        for half in halves
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _metrics(metrics_url: str) -> dict[str, float]:
    """A worker's /metrics, each metric summed over its labels."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for name, value in re.findall(r"^(\w+)(?:\{[^}]*\})? (\S+)$", text, re.M):
        values[name] = values.get(name, 0.0) + float(value)
    return values


@dataclass
class Sample:
    at: float  # perf_counter seconds
    stored: int  # events stored by the worker so far
    partitions: int  # partitions it owns now
    cpu: float  # its CPU seconds so far


@dataclass
class WorkerProcess:
    """A `kubetrail worker` process, its /metrics and its progress samples."""

    process: subprocess.Popen[bytes]
    metrics: str
    samples: list[Sample] = field(default_factory=list)
    mark: int = 0  # the sample `busy` measures from

    def sample(self) -> Sample:
        values = _metrics(self.metrics)
        taken = Sample(
            time.perf_counter(),
            int(values.get("kubetrail_worker_events_total", 0)),
            int(values.get("kubetrail_worker_partitions", 0)),
            cpu_seconds(self.process.pid),
        )
        self.samples.append(taken)
        return taken

    def busy(self) -> tuple[int, float, float]:
        """Events stored, wall seconds and CPU seconds from the marked sample to the first sample showing its final
        count."""
        final = self.samples[-1].stored
        end = next(index for index, sample in enumerate(self.samples) if sample.stored == final)
        first, last = self.samples[self.mark], self.samples[max(end, self.mark)]
        return last.stored - first.stored, last.at - first.at, last.cpu - first.cpu


def _start_workers(bus: str, lake: Path, names: list[str], folder: Path, source: Path | None) -> list[WorkerProcess]:
    """Start the workers together (this checkout's code, or the tree at `source`), and wait until they share every
    partition between them."""
    processes: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    environment = dict(os.environ) | ({"PYTHONPATH": str(source)} if source is not None else {})
    for name in names:
        log = folder / f"{name}.log"
        command = [*KUBETRAIL, "worker", "--bus", bus, "--lake", str(lake), "--id", name]
        with open(log, "wb") as handle:
            processes[name] = (
                subprocess.Popen(
                    command, stdout=handle, stderr=subprocess.STDOUT, cwd=source or PROJECT, env=environment
                ),
                log,
            )
    workers: list[WorkerProcess] = []
    deadline = time.monotonic() + 120
    for name, (process, log) in processes.items():
        while True:
            found = re.search(r"health at (http://\S+)/healthz", log.read_text(errors="replace"))
            if found:
                workers.append(WorkerProcess(process, f"{found.group(1)}/metrics"))
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {name} did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
    from kubetrail.bus.partitions import assigned

    shares = [len(assigned(name, names, PARTITIONS)) for name in names]
    while True:
        for worker in workers:
            worker.sample()
        owned = [worker.samples[-1].partitions for worker in workers]
        if owned == shares:  # every hand-over done
            return workers
        if time.monotonic() > deadline:
            raise RuntimeError(f"the workers own {owned} partitions, not {shares}")
        time.sleep(0.1)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a paused worker handles SIGTERM only once it runs
            process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout=180)


def _receiver(bus: str, spool: Path) -> tuple[subprocess.Popen[str], str]:
    command = [*KUBETRAIL, "serve", "--bus", bus, "--store", str(spool), "--listen", "127.0.0.1:0"]
    return start_process([*command, "--log-level", "warning"])


def _post(urls: list[str], bodies: list[bytes]) -> float:
    """Post every body, spread over the receivers (CLIENTS keep-alive connections in all); wall seconds."""
    failures = [0] * len(urls)

    def load(index: int) -> None:
        _, _, failures[index] = post_all(urls[index], bodies[index :: len(urls)], max(1, CLIENTS // len(urls)))

    threads = [threading.Thread(target=load, args=(index,)) for index in range(len(urls))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if sum(failures):
        raise RuntimeError(f"{sum(failures)} batches were refused by the receivers")
    return time.perf_counter() - started


def _wait_stored(workers: list[WorkerProcess], total: int, timeout: float = 600.0) -> float:
    """Sample the workers until together they stored `total` events; the perf_counter time that happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(worker.sample().stored for worker in workers) >= total:
            return time.perf_counter()
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"the workers stored {sum(worker.samples[-1].stored for worker in workers)} of {total} events")


@dataclass
class BusRun:
    workers: int
    acked: float  # events/s acknowledged (live phase)
    into_lake: float  # events/s end to end (live phase)
    live_cpu: dict[str, float]  # CPU seconds per role during the live phase
    per_worker: list[tuple[int, float, float]]  # backlog phase: events, busy seconds, CPU seconds per worker
    drain: float  # backlog phase: events/s of the pool, from the workers' resumption to the last event stored


def _lake_rows(lake: Path) -> int:
    from kubetrail.bus.lake import open_lake

    row = open_lake(lake).execute("select count(*) from events").fetchone()
    return int(row[0]) if row else 0


def _bus(
    live: list[bytes], backlog: list[bytes], events: int, folder: Path, count: int, source: Path | None = None
) -> BusRun:
    port = _free_port()
    nats = subprocess.Popen(
        [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(folder / "js")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    receivers: list[subprocess.Popen[str]] = []
    workers: list[WorkerProcess] = []
    try:
        _wait_port(port)
        bus = f"nats://127.0.0.1:{port}"
        started = [_receiver(bus, folder / f"spool{index}") for index in range(RECEIVERS)]
        receivers = [process for process, _ in started]
        urls = [url for _, url in started]
        lake = folder / "lake"
        names = [f"w{index}" for index in range(count)]
        workers = _start_workers(bus, lake, names, folder, source)
        pids = {
            "workers": [w.process.pid for w in workers],
            "receivers": [r.pid for r in receivers],
            "nats": [nats.pid],
        }
        cpu_before = {role: sum(cpu_seconds(pid) for pid in group) for role, group in pids.items()}
        began = time.perf_counter()
        acked = _post(urls, live)
        done = _wait_stored(workers, events) - began
        live_cpu = {role: sum(cpu_seconds(pid) for pid in pids[role]) - before for role, before in cpu_before.items()}
        for worker in workers:  # paused, so that the backlog waits in the stream; their partitions stay theirs
            worker.sample()
            worker.mark = len(worker.samples) - 1
            worker.process.send_signal(signal.SIGSTOP)
        _post(urls, backlog)  # acknowledged by JetStream alone
        first = time.perf_counter()
        for worker in workers:
            worker.samples[worker.mark].at = first  # nothing changed while paused but the clock
            worker.process.send_signal(signal.SIGCONT)
        finished = _wait_stored(workers, 2 * events)
        per_worker = [worker.busy() for worker in workers]
        _stop([worker.process for worker in workers])
        workers = []
        stored = _lake_rows(lake)
        if stored != 2 * events:
            raise RuntimeError(f"the lake holds {stored} of {2 * events} events")
        return BusRun(count, events / acked, events / done, live_cpu, per_worker, events / (finished - first))
    finally:
        _stop([worker.process for worker in workers])
        _stop(receivers)  # type: ignore[arg-type]
        nats.kill()
        nats.wait()


def _single(bodies: list[bytes], folder: Path) -> float:
    process, url = start_process(serve_command(folder))
    try:
        seconds, _, failures = post_all(url, bodies, CLIENTS)
    finally:
        process.terminate()
        process.wait(timeout=180)
    if failures:
        raise RuntimeError(f"{failures} batches were refused by serve")
    return seconds


def _best(runs: list[BusRun]) -> BusRun:
    return max(runs, key=lambda run: run.drain)


def run() -> list[BenchResult]:
    if not Path(NATS_SERVER).exists():
        return []
    live, backlog = _bodies(_scaled(EVENTS))
    events = sum(body.count(b'"auditID"') for body in live)
    folder = Path(tempfile.mkdtemp(prefix="kubetrail-bench-bus-"))
    singles: list[float] = []
    runs: dict[int, list[BusRun]] = {1: [], 2: []}
    before: list[BusRun] = []
    try:
        source = sources_at(WORKER_BASELINE_REF, folder / "baseline")
        for round_index in range(int(os.environ.get("KUBETRAIL_BENCH_ROUNDS", ROUNDS))):
            singles.append(events / _single(live, folder / f"single{round_index}"))
            if source is not None:
                before.append(_bus(live, backlog, events, folder / f"before-{round_index}", 1, source))
            for count in runs:
                runs[count].append(_bus(live, backlog, events, folder / f"bus{count}-{round_index}", count))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    single = max(singles)
    detail: dict[str, object] = {"events": events, "batch": BATCH, "clients": CLIENTS, "cpus": os.cpu_count()}
    results = [BenchResult(NAME, "single serve: events/s acknowledged (baseline)", single, "events/s", detail=detail)]
    if before:
        old = _best(before)
        stored, seconds, cpu = old.per_worker[0]
        then = detail | {"workers": 1, "ref": WORKER_BASELINE_REF, "events": stored, "busy_seconds": round(seconds, 2),
                         "cpu_seconds": round(cpu, 2)}  # fmt: skip
        results += [
            BenchResult(NAME, f"worker at {WORKER_BASELINE_REF} (before), backlog: events/s into the lake",
                        stored / seconds, "events/s", detail=then),
            BenchResult(NAME, f"worker at {WORKER_BASELINE_REF} (before), backlog: events per worker CPU-second",
                        stored / cpu, "events/cpu-s", detail=then),
        ]  # fmt: skip
    for count, measured in runs.items():
        best = _best(measured)
        where = f"{RECEIVERS} receivers + {count} worker(s)"
        setup = detail | {"receivers": RECEIVERS, "workers": count}
        live_detail = setup | {"cpu_seconds_live": {role: round(value, 2) for role, value in best.live_cpu.items()}}
        results += [
            BenchResult(NAME, f"{where}, live: events/s acknowledged", best.acked, "events/s",
                        detail=live_detail | {"ratio_to_single": round(best.acked / single, 2)}),
            BenchResult(NAME, f"{where}, live: events/s into the lake", best.into_lake, "events/s",
                        detail=live_detail | {"ratio_to_single": round(best.into_lake / single, 2)}),
            BenchResult(NAME, f"{where}, backlog: events/s into the lake (pool)", best.drain, "events/s",
                        detail=setup | {"ratio_to_single": round(best.drain / single, 2)}),
        ]  # fmt: skip
        for index, (stored, seconds, cpu) in enumerate(best.per_worker):
            share = setup | {"worker": f"w{index}", "events": stored, "busy_seconds": round(seconds, 2),
                             "cpu_seconds": round(cpu, 2)}  # fmt: skip
            results += [
                BenchResult(NAME, f"{where}, backlog: w{index} events/s into the lake", stored / seconds,
                            "events/s", target=TARGET_PER_WORKER, detail=share),
                BenchResult(NAME, f"{where}, backlog: w{index} events per worker CPU-second", stored / cpu,
                            "events/cpu-s", target=TARGET_PER_WORKER, detail=share),
            ]  # fmt: skip
    return results


if __name__ == "__main__":
    for result in run():
        verdict = "" if result.passed is None else (" pass" if result.passed else " MISSED")
        print(f"{result.metric}: {result.value:,.1f} {result.unit}{verdict}")
