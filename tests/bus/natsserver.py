"""Real nats-server processes with JetStream on free loopback ports: one node, or a cluster of three."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nats-server exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail("nats-server did not start listening")


@dataclass
class NatsNode:
    name: str
    port: int
    config: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [NATS_SERVER, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_listening(self.port, self.process)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


def require_nats_server() -> None:
    if not Path(NATS_SERVER).exists():
        pytest.skip("nats-server is not installed (Debian package nats-server)")


def nats_nodes(base: Path, count: int) -> list[NatsNode]:
    """Config files for `count` JetStream nodes (a cluster when count > 1), not started."""
    require_nats_server()
    ports = [free_port() for _ in range(count)]
    cluster_ports = [free_port() for _ in range(count)]
    nodes: list[NatsNode] = []
    for index in range(count):
        name = f"n{index}"
        store = base / name
        store.mkdir(parents=True, exist_ok=True)
        lines = [
            f"server_name: {name}",
            f"listen: 127.0.0.1:{ports[index]}",
            "jetstream { store_dir: " + str(store) + " }",
        ]
        if count > 1:
            routes = ", ".join(f"nats-route://127.0.0.1:{port}" for port in cluster_ports)
            cluster = f"name: kt, listen: 127.0.0.1:{cluster_ports[index]}, routes: [{routes}]"
            lines.append("cluster { " + cluster + " }")
        config = base / f"{name}.conf"
        config.write_text("\n".join(lines) + "\n")
        nodes.append(NatsNode(name, ports[index], config))
    return nodes


@pytest.fixture
def nats_node(tmp_path: Path) -> Iterator[NatsNode]:
    """One JetStream node, stopped at the end."""
    (node,) = nats_nodes(tmp_path / "nats", 1)
    node.start()
    try:
        yield node
    finally:
        node.kill()
