"""Scale-out throughput: 2 receivers on NATS JetStream + 1 or 2 workers, against the single-process `serve`.

All processes are real and share this machine's cores with the load clients: the single `serve` (fsync'd WAL
acks), then a JetStream node with 2 `serve --bus` receivers (acks after JetStream's publish ack) and W workers
(`kubetrail worker`, detection on, writing the lake). Reported per setup: events/s acknowledged to the clients,
and events/s end to end (until every event is in the lake, for the bus). On a 2-core machine the bus adds
processes competing for the same cores, so it cannot beat one process here; the design scales by adding
machines (receivers are stateless; workers share the stream's partitions, each partition on one worker at a
time), which this machine cannot show.
Skipped when nats-server is not installed. Run alone: `python -m bench bus`.
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
import time
from pathlib import Path

from bench.bench_receiver import BATCH, batches, post_all, serve_command, start_process
from bench.common import BenchResult

NAME = "bus"
EVENTS = 100_000
CLIENTS = 4
PROJECT = Path(__file__).resolve().parent.parent
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
KUBETRAIL = [sys.executable, "-m", "kubetrail.cli.main"]


def _scaled(count: int) -> int:
    return max(4 * BATCH, int(count * float(os.environ.get("KUBETRAIL_BENCH_SCALE", "1"))))


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


def _receiver(bus: str, spool: Path) -> tuple[subprocess.Popen[str], str]:
    command = [*KUBETRAIL, "serve", "--bus", bus, "--store", str(spool), "--listen", "127.0.0.1:0"]
    process = subprocess.Popen([*command, "--log-level", "warning"], stdout=subprocess.PIPE, text=True, cwd=PROJECT)
    assert process.stdout is not None
    for line in process.stdout:
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            return process, found.group(1)
    raise RuntimeError(f"serve --bus exited with {process.wait()}")


def _lake_rows(lake: Path) -> int:
    from kubetrail.bus.lake import open_lake

    if not lake.is_dir() or not any(lake.iterdir()):
        return 0
    try:
        row = open_lake(lake).execute("select count(*) from events").fetchone()
    except Exception:  # a worker's segment mid-creation: look again
        return 0
    return int(row[0]) if row else 0


def _pending(bus: str) -> int:
    """Batches not yet acknowledged by a worker: the work-queue stream keeps a message until a worker acks it."""
    import asyncio

    import nats
    from nats.js.errors import NotFoundError

    from kubetrail.bus.config import DEFAULT_STREAM

    async def ask() -> int:
        connection = await nats.connect(bus)
        try:
            info = await connection.jetstream().stream_info(DEFAULT_STREAM)
            return int(info.state.messages or 0)
        except NotFoundError:
            return 1  # no receiver has created the stream yet
        finally:
            await connection.close()

    return asyncio.run(ask())


def _single(bodies: list[bytes], folder: Path) -> float:
    process, url = start_process(serve_command(folder / "single"))
    try:
        seconds, _, failures = post_all(url, bodies, CLIENTS)
    finally:
        process.terminate()
        process.wait(timeout=120)
    if failures:
        raise RuntimeError(f"{failures} batches were refused by serve")
    return seconds


def _bus(bodies: list[bytes], events: int, folder: Path, workers: int) -> tuple[float, float]:
    port = _free_port()
    nats = subprocess.Popen(
        [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(folder / "js")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    processes: list[subprocess.Popen[str]] = []
    try:
        _wait_port(port)
        bus = f"nats://127.0.0.1:{port}"
        receivers = [_receiver(bus, folder / f"spool{index}") for index in range(2)]
        processes += [process for process, _ in receivers]
        lake = folder / "lake"
        for index in range(workers):
            command = [*KUBETRAIL, "worker", "--bus", bus, "--lake", str(lake), "--id", f"w{index}"]
            processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, cwd=PROJECT, text=True))
        started = time.perf_counter()
        halves = [bodies[0::2], bodies[1::2]]
        import threading

        failures = [0, 0]

        def load(index: int) -> None:
            _, _, failures[index] = post_all(receivers[index][1], halves[index], CLIENTS // 2)

        threads = [threading.Thread(target=load, args=(index,)) for index in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        acked = time.perf_counter() - started
        if sum(failures):
            raise RuntimeError(f"{sum(failures)} batches were refused by the receivers")
        deadline = time.monotonic() + 600
        while _pending(bus) and time.monotonic() < deadline:
            time.sleep(0.2)
        done = time.perf_counter() - started
        stored = _lake_rows(lake)
        if stored != events:
            raise RuntimeError(f"the lake holds {stored} of {events} events")
        return acked, done
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=120)
        nats.kill()
        nats.wait()


def run() -> list[BenchResult]:
    if not Path(NATS_SERVER).exists():
        return []
    bodies = batches(_scaled(EVENTS))
    events = sum(body.count(b'"auditID"') for body in bodies)
    folder = Path(tempfile.mkdtemp(prefix="kubetrail-bench-bus-"))
    try:
        single = _single(bodies, folder)
        results = [
            BenchResult(
                NAME, "single serve: events/s acknowledged", events / single, "events/s", detail={"events": events}
            )
        ]
        for workers in (1, 2):
            acked, done = _bus(bodies, events, folder / f"bus{workers}", workers)
            detail = {"events": events, "receivers": 2, "workers": workers, "cpus": os.cpu_count()}
            results.append(
                BenchResult(
                    NAME,
                    f"bus, 2 receivers + {workers} worker(s): events/s acknowledged",
                    events / acked,
                    "events/s",
                    detail=detail,
                )
            )
            results.append(
                BenchResult(
                    NAME,
                    f"bus, 2 receivers + {workers} worker(s): events/s into the lake",
                    events / done,
                    "events/s",
                    detail=detail,
                )
            )
        return results
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    for result in run():
        print(f"{result.metric}: {result.value:,.1f} {result.unit}")
