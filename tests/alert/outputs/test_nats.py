"""The NATS output against a real nats-server on a free loopback port, read back with nats-py."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from kubetrail.alert.outputs import OutputError

nats = pytest.importorskip("nats", reason="nats-py is not installed (the `nats` extra)")

from kubetrail.alert.outputs.nats import NatsOutput  # noqa: E402
from tests.alert.helpers import make_alert  # noqa: E402

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_nats(port: int) -> subprocess.Popen[bytes]:
    if not os.access(NATS_SERVER, os.X_OK):
        pytest.skip("nats-server is not installed (Debian package nats-server)")
    process = subprocess.Popen(
        [NATS_SERVER, "-a", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("nats-server did not start")
            time.sleep(0.05)


def stop_nats(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(10)


@pytest.fixture
def nats_url() -> Iterator[str]:
    port = free_port()
    process = start_nats(port)
    try:
        yield f"nats://127.0.0.1:{port}"
    finally:
        stop_nats(process)


class Subscriber:
    """Subscribes on its own event loop thread and collects message payloads."""

    def __init__(self, url: str, subject: str) -> None:
        self.messages: list[bytes] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client = self._run(nats.connect(url))
        self._run(self._subscribe(subject))

    def _run(self, coroutine: object) -> object:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)  # type: ignore[arg-type]

    async def _subscribe(self, subject: str) -> None:
        async def handler(message: object) -> None:
            self.messages.append(message.data)  # type: ignore[attr-defined]

        await self.client.subscribe(subject, cb=handler)  # type: ignore[attr-defined]
        await self.client.flush()  # type: ignore[attr-defined]

    def wait(self, count: int, timeout: float = 10.0) -> list[dict[str, object]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return [json.loads(message) for message in self.messages]

    def close(self) -> None:
        self._run(self.client.drain())  # type: ignore[attr-defined]
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_alerts_arrive_on_the_subject_as_falco_json(nats_url: str) -> None:
    subscriber = Subscriber(nats_url, "kubetrail.alerts")
    output = NatsOutput(nats_url, "kubetrail.alerts")
    try:
        output.send([make_alert(audit_id="n1"), make_alert(audit_id="n2")])
        output.send([make_alert(audit_id="n3")])
        received = subscriber.wait(3)
    finally:
        output.close()
        subscriber.close()
    assert [message["auditID"] for message in received] == ["n1", "n2", "n3"]
    assert received[0]["rule"] == "Attach/Exec Pod"
    assert received[0]["priority"] == "Notice"


def test_no_server_is_an_output_error() -> None:
    output = NatsOutput(f"nats://127.0.0.1:{free_port()}", "kubetrail.alerts", timeout=1)
    try:
        with pytest.raises(OutputError, match="cannot publish"):
            output.send([make_alert()])
    finally:
        output.close()


def test_a_subject_with_spaces_is_refused() -> None:
    with pytest.raises(OutputError, match="subject"):
        NatsOutput("nats://127.0.0.1:4222", "kube trail")


def test_publishing_resumes_after_the_server_restarts() -> None:
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    server = start_nats(port)
    output = NatsOutput(url, "kubetrail.alerts", timeout=1)
    try:
        output.send([make_alert(audit_id="before")])
        stop_nats(server)
        with pytest.raises(OutputError):
            output.send([make_alert(audit_id="while-down")])
        server = start_nats(port)
        subscriber = Subscriber(url, "kubetrail.alerts")
        try:
            deadline = time.monotonic() + 15
            while True:  # a batch may fail while the old connection is found dead; a later one gets through
                try:
                    output.send([make_alert(audit_id="after")])
                    break
                except OutputError:
                    if time.monotonic() > deadline:
                        raise
            received = subscriber.wait(1)
        finally:
            subscriber.close()
    finally:
        output.close()
        stop_nats(server)
    assert [message["auditID"] for message in received] == ["after"]
