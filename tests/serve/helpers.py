"""Helpers for the receiver, tailer and serve tests: apiserver-shaped events, certificates, a `serve` process."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx

from kubetrail.store import Store

PROJECT = Path(__file__).resolve().parents[2]


def audit_event(number: int, *, stage: str = "ResponseComplete", prefix: str = "e") -> dict[str, Any]:
    """One event as kube-apiserver's webhook backend serialises it (audit.k8s.io/v1, Metadata level)."""
    second = number % 86_400
    stamp = f"2026-03-19T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}.{number % 1_000_000:06d}Z"
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"{prefix}-{number:08d}-0000-4000-8000-000000000000",
        "stage": stage,
        "requestURI": f"/api/v1/namespaces/default/pods/web-{number}",
        "verb": "get",
        "user": {"username": "system:serviceaccount:default:web", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.7"],
        "userAgent": "kubectl/v1.30.0 (linux/amd64) kubernetes/abcdef",
        "objectRef": {"resource": "pods", "namespace": "default", "name": f"web-{number}", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": stamp,
        "stageTimestamp": stamp,
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }


def event_list(events: list[dict[str, Any]]) -> bytes:
    """The webhook's request body: an EventList."""
    return json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": events}).encode()


def audit_ids(store_dir: Path) -> list[str]:
    """Every stored auditID (duplicates kept, so a test can see them), read through a read-only store."""
    store = Store.open(store_dir, read_only=True)
    try:
        connection = store.query_connection()
        return [row[0] for row in connection.execute("select audit_id from events").fetchall()]
    finally:
        store.close()


def count_by_cluster(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    rows = connection.execute("select cluster, count(*) from events group by cluster").fetchall()
    return {str(cluster): int(count) for cluster, count in rows}


class AsgiClient:
    """A synchronous HTTP client that calls an ASGI app in-process (httpx's ASGITransport) on one event loop."""

    def __init__(self, app: Any) -> None:
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        self.client = httpx.AsyncClient(transport=transport, base_url="http://receiver")

    def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        content = options.get("content")
        if content is not None and not isinstance(content, bytes):
            chunks = list(content)

            async def stream() -> Any:
                for chunk in chunks:
                    yield chunk

            options["content"] = stream()
        return self.loop.run_until_complete(self.client.request(method, url, **options))

    def post(self, url: str, **options: Any) -> httpx.Response:
        return self.request("POST", url, **options)

    def get(self, url: str, **options: Any) -> httpx.Response:
        return self.request("GET", url, **options)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ----- certificates ---------------------------------------------------------------------------------------------


@dataclass
class Certificates:
    """A CA with a server certificate for 127.0.0.1, a client certificate, and one from an unrelated CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path


def make_certificates(directory: Path, *, client_cn: str = "kube-apiserver", client_o: str = "prod") -> Certificates:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def name(common: str, organization: str | None = None) -> x509.Name:
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
        if organization:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        return x509.Name(attributes)

    def issue(
        subject: x509.Name,
        key: Any,
        issuer: x509.Name,
        issuer_key: Any,
        *,
        ca: bool,
        usage: Any = None,
        san: bool = False,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
            )
        if usage is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return builder.sign(issuer_key, hashes.SHA256())

    def write(path: Path, cert: x509.Certificate | None = None, key: Any = None) -> Path:
        if cert is not None:
            path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        else:
            path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        return path

    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    stranger_ca_key, stranger_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name, stranger_ca_name = name("test audit CA"), name("another CA")
    ca = issue(ca_name, ca_key, ca_name, ca_key, ca=True)
    server = issue(
        name("localhost"), server_key, ca_name, ca_key, ca=False, usage=ExtendedKeyUsageOID.SERVER_AUTH, san=True
    )
    client = issue(
        name(client_cn, client_o), client_key, ca_name, ca_key, ca=False, usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    stranger = issue(
        name(client_cn, client_o),
        stranger_key,
        stranger_ca_name,
        stranger_ca_key,
        ca=False,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    return Certificates(
        ca=write(directory / "ca.pem", ca),
        server_cert=write(directory / "server.pem", server),
        server_key=write(directory / "server-key.pem", key=server_key),
        client_cert=write(directory / "client.pem", client),
        client_key=write(directory / "client-key.pem", key=client_key),
        stranger_cert=write(directory / "stranger.pem", stranger),
        stranger_key=write(directory / "stranger-key.pem", key=stranger_key),
    )


# ----- a real `kubetrail serve` process ----------------------------------------------------------------------------

URL_LINE = re.compile(r"listening on (https?://\S+)")


@dataclass
class ServeProcess:
    process: subprocess.Popen[str]
    url: str
    output: list[str]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


def start_serve(*arguments: str, timeout: float = 60.0, env: dict[str, str] | None = None) -> ServeProcess:
    """Start `kubetrail serve ARGUMENTS` and wait for the URL it prints."""
    command = [sys.executable, "-m", "kubetrail.cli.main", "serve", *arguments]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=PROJECT,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    output: list[str] = []
    found: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            match = URL_LINE.search(line)
            if match and not found:
                found.append(match.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.1):
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("serve did not start:\n" + "".join(output))
    if not found:
        process.wait(timeout=10)
        raise AssertionError(f"serve exited with {process.returncode}:\n" + "".join(output))
    return ServeProcess(process, found[0], output)


@contextmanager
def serving(*arguments: str, env: dict[str, str] | None = None) -> Iterator[ServeProcess]:
    server = start_serve(*arguments, env=env)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=30)
