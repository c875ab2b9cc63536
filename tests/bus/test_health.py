"""A real `kubetrail worker` process's health port against a real JetStream node: live, ready, counting, not
ready (but still live) while NATS is gone, and ready again once it is back."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from kubetrail.bus import BusError, parse_bus_url
from kubetrail.bus.config import DEFAULT_PARTITIONS
from kubetrail.bus.health import parse_health_listen
from kubetrail.bus.publisher import BusPublisher
from kubetrail.emit.generator import GeneratorConfig, generate
from kubetrail.model import Event
from tests.bus.natsserver import NatsNode, free_port, nats_node

__all__ = ["nats_node"]

KUBETRAIL = [sys.executable, "-m", "kubetrail.cli.main"]


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None


def _samples(text: str) -> dict[str, float]:
    """Prometheus text → {'name{labels}': value}, comments skipped."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def _publish(url: str, batches: list[tuple[str, list[Event]]]) -> None:
    async def run() -> None:
        publisher = BusPublisher(parse_bus_url(url))
        await publisher.connect()
        try:
            for cluster, events in batches:
                await publisher.publish(cluster, events)
        finally:
            await publisher.close()

    asyncio.run(run())


class WorkerProcess:
    def __init__(self, bus: str, lake: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        args = ["worker", "--bus", bus, "--lake", str(lake), "--id", "w1", "--rules", "none", "--log-level", "info"]
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [*KUBETRAIL, *args, "--health-listen", f"127.0.0.1:{self.port}"],
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def get(self, path: str) -> httpx.Response | None:
        return _get(self.url + path)

    def metrics(self) -> dict[str, float]:
        response = self.get("/metrics")
        assert response is not None and response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        return _samples(response.text)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[str], WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(bus: str) -> WorkerProcess:
        worker = WorkerProcess(bus, tmp_path / "lake", tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait(10)


def _status(worker: WorkerProcess, path: str) -> int | None:
    response = worker.get(path)
    return None if response is None else response.status_code


def test_a_worker_is_live_ready_counts_what_it_stores_and_is_unready_while_nats_is_gone(
    nats_node: NatsNode, start_worker: Callable[[str], WorkerProcess]
) -> None:
    worker = start_worker(nats_node.url)
    _wait_for(lambda: _status(worker, "/readyz") == 200, "the worker to join the pool")
    # --log-level info: each partition it takes is logged, one timestamped line each
    line = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ INFO kubetrail\.bus\.worker: worker w1: took partition (\d+)$", re.M)

    def taken() -> list[int]:
        return sorted(int(number) for number in line.findall(worker.log.read_text()))

    _wait_for(lambda: taken() == list(range(DEFAULT_PARTITIONS)), "the only worker to take every partition")
    health = worker.get("/healthz")
    assert health is not None and (health.status_code, health.text) == (200, "ok\n")
    before = worker.metrics()
    assert before["kubetrail_worker_ready"] == 1
    assert before["kubetrail_worker_batches_total"] == 0
    assert not any(name.startswith("kubetrail_worker_events_total") for name in before)

    events = list(generate(GeneratorConfig(seed=3, nodes=1, rate=10.0, duration=30.0)))
    prod, dev = events[:150], events[150:200]
    assert len(dev) == 50
    _publish(nats_node.url, [("prod", prod[:100]), ("prod", prod[100:]), ("dev", dev)])
    _wait_for(
        lambda: (
            worker.metrics().get('kubetrail_worker_events_total{cluster="dev"}') == 50
            and worker.metrics().get('kubetrail_worker_events_total{cluster="prod"}') == 150
        ),
        "the three batches stored",
    )
    after = worker.metrics()
    assert after["kubetrail_worker_batches_total"] >= 3  # a batch is one message per partition it touches
    assert after['kubetrail_worker_events_total{cluster="prod"}'] == 150
    assert after['kubetrail_worker_events_total{cluster="dev"}'] == 50
    assert after["kubetrail_worker_events_duplicate_total"] == 0
    assert after['kubetrail_worker_info{worker="w1",stream="KUBETRAIL_AUDIT",consumer="kubetrail-workers"}'] == 1

    nats_node.kill()
    _wait_for(lambda: _status(worker, "/readyz") == 503, "/readyz to report the lost connection", timeout=15)
    unready = worker.get("/readyz")
    assert unready is not None and "NATS" in unready.text and unready.text.count("\n") == 1
    assert _status(worker, "/healthz") == 200  # the loop is fine: no reason for the kubelet to restart it
    assert worker.metrics()["kubetrail_worker_ready"] == 0

    nats_node.start()  # same store: the consumer is still there, and the worker reconnects by itself
    _wait_for(lambda: _status(worker, "/readyz") == 200, "/readyz to recover after NATS came back", timeout=15)
    assert worker.process.poll() is None
    assert worker.stop() == 0, worker.log.read_text()
    assert _get(worker.url + "/healthz") is None  # the port closes with the worker


def test_a_worker_that_cannot_reach_nats_is_live_but_not_ready(start_worker: Callable[[str], WorkerProcess]) -> None:
    worker = start_worker(f"nats://127.0.0.1:{free_port()}")  # nothing listens there
    _wait_for(lambda: _status(worker, "/healthz") == 200, "the health port")
    response = worker.get("/readyz")
    assert response is not None and response.status_code == 503
    assert "worker pool" in response.text


def test_a_taken_health_port_is_one_clear_error(tmp_path: Path) -> None:
    port = free_port()
    args = ["worker", "--bus", f"nats://127.0.0.1:{free_port()}", "--lake", str(tmp_path / "lake"), "--rules", "none"]
    with socket.create_server(("127.0.0.1", port)):
        result = subprocess.run(
            [*KUBETRAIL, *args, "--health-listen", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8081", ("127.0.0.1", 8081)),
        ("0.0.0.0:8081", ("0.0.0.0", 8081)),
        ("[::1]:9000", ("::1", 9000)),
        ("off", None),
        ("OFF", None),
    ],
)
def test_health_listen_values(text: str, expected: tuple[str, int] | None) -> None:
    assert parse_health_listen(text) == expected


@pytest.mark.parametrize("text", ["8081", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", ":8081"])
def test_bad_health_listen_values_are_refused(text: str) -> None:
    with pytest.raises(BusError, match="is not HOST:PORT"):
        parse_health_listen(text)
