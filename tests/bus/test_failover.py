"""Scale-out acceptance with real processes: a 3-node NATS cluster (stream of 3 replicas), 2 receivers on the
bus, 2 workers; one NATS node and one worker are killed mid-run (the worker restarted). Every event a receiver
acknowledged is in the lake exactly once, and no alert is stored twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import nats

from kubetrail.bus.lake import open_lake
from kubetrail.detect import BUILTIN, Engine, EventContext, load_ruleset, rule_sources
from kubetrail.intake import read_events
from tests.bus.natsserver import free_port, nats_nodes

KUBETRAIL = [sys.executable, "-m", "kubetrail.cli.main"]


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    handle = open(log, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT)


def _wait_http(port: int, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"receiver on {port} did not start")


def _alerts(urls: list[str]) -> list[dict[str, object]]:
    async def read() -> list[dict[str, object]]:
        connection = await nats.connect(servers=urls)
        try:
            js = connection.jetstream(timeout=15)
            for attempt in range(10):  # the cluster may still be moving leaders after the killed node
                try:
                    subscription = await js.pull_subscribe("kubetrail.alerts.>", stream="KUBETRAIL_ALERTS")
                    break
                except (nats.errors.TimeoutError, TimeoutError):
                    if attempt == 9:
                        raise
                    await asyncio.sleep(1)
            found: list[dict[str, object]] = []
            while True:
                try:
                    messages = await subscription.fetch(500, timeout=5)
                except (nats.errors.TimeoutError, TimeoutError):
                    return found
                for message in messages:
                    found.append(json.loads(message.data))
                    await message.ack()
        finally:
            await connection.close()

    return asyncio.run(read())


def test_killing_a_nats_node_and_a_worker_loses_and_repeats_nothing(tmp_path: Path) -> None:
    nodes = nats_nodes(tmp_path / "nats", 3)
    for node in nodes:
        node.start()
    bus = ",".join(node.url for node in nodes)
    lake = tmp_path / "lake"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        ports = [free_port(), free_port()]
        for index, port in enumerate(ports):
            serve = [*KUBETRAIL, "serve", "--bus", bus, "--bus-replicas", "3", "--listen", f"127.0.0.1:{port}"]
            processes.append(_start([*serve, "--store", str(tmp_path / f"spool{index}")], tmp_path / f"r{index}.log"))
        for port in ports:
            _wait_http(port)

        worker_logs: dict[str, Path] = {}

        def worker(name: str) -> subprocess.Popen[bytes]:
            args = [*KUBETRAIL, "worker", "--bus", bus, "--bus-replicas", "3", "--lake", str(lake), "--id", name]
            worker_logs[name] = tmp_path / f"{name}-{time.monotonic_ns()}.log"
            started = _start([*args, "--ack-wait", "3"], worker_logs[name])
            processes.append(started)
            return started

        workers = {name: worker(name) for name in ("w1", "w2")}
        logs = {cluster: tmp_path / f"{cluster}.log" for cluster in ("prod", "dev")}
        loads = []
        for (cluster, log), port, seed in zip(logs.items(), ports, ("31", "32"), strict=True):
            common = ["--duration", "300", "--rate", "30", "--scenario", "all", "--seed", seed]
            subprocess.run([*KUBETRAIL, "generate", *common, "-o", str(log)], check=True, timeout=180)
            target = ["--webhook", f"http://127.0.0.1:{port}/audit/{cluster}", "--webhook-batch", "100"]
            loads.append(
                _start(
                    [*KUBETRAIL, "generate", *common, *target, "--webhook-initial-backoff", "0.2"],
                    tmp_path / f"load-{cluster}.log",
                )
            )
            processes.append(loads[-1])
        time.sleep(4)
        nodes[2].kill()  # one NATS node dies mid-run
        workers["w1"].send_signal(signal.SIGKILL)  # a worker dies mid-batch, then comes back
        workers["w1"].wait(10)
        time.sleep(2)
        workers["w1"] = worker("w1")
        for load in loads:
            assert load.wait(300) == 0, (tmp_path / "load-prod.log").read_text()[-2000:]

        expected = {
            (cluster, event.auditID, str(event.stage)) for cluster, log in logs.items() for event in read_events(log)
        }
        deadline = time.monotonic() + 90
        stored: list[tuple[str, str, str]] = []
        while time.monotonic() < deadline:
            try:
                stored = open_lake(lake).execute("select cluster, audit_id, stage from events").fetchall()
            except Exception:  # a segment mid-creation; look again
                stored = []
            if len(stored) >= len(expected):
                break
            time.sleep(1)
        assert len(stored) == len(set(stored)) == len(expected)  # exactly once
        assert set(stored) == expected
        for name, process in workers.items():
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0, worker_logs[name].read_text()[-3000:]
        alerts = _alerts([node.url for node in nodes[:2]])
        keys = Counter((alert["rule"], alert["cluster"], alert["auditID"], alert["time"]) for alert in alerts)
        assert alerts and max(keys.values()) == 1
        assert {"prod", "dev"} <= {alert["cluster"] for alert in alerts}
        # stateless rules do not depend on order or on which worker saw what: exactly a single process's alerts
        rules = load_ruleset(rule_sources([BUILTIN]))
        single = set()
        for cluster, log in logs.items():
            engine = Engine(rules)
            for event in read_events(log):
                single |= {
                    (alert.rule, cluster, alert.audit_id) for alert in engine.detect(EventContext(event, cluster))
                }
        stateless = {rule.name for rule in rules.rules}
        distributed = {(alert["rule"], alert["cluster"], alert["auditID"]) for alert in alerts}
        assert {key for key in distributed if key[0] in stateless} == {key for key in single if key[0] in stateless}
        # stateful rules ran on partitions (one identity's events on one worker) and fired too
        assert any("stateful" in alert["tags"] for alert in alerts)  # type: ignore[operator]
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
        for node in nodes:
            node.kill()
