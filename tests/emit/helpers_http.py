"""Real audit receivers for the emit tests: a Starlette app under uvicorn on a free loopback port,
plus a throw-away certificate authority for TLS with client certificates."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


class Receiver:
    """Records every POSTed EventList; answers from a script of replies, then 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.accepted: list[dict[str, Any]] = []
        self.script: deque[Reply] = deque()
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])])

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.requests.append((dict(request.headers), body))
            reply = self.script.popleft() if self.script else Reply()
            if 200 <= reply.status <= 206:
                self.accepted.append(json.loads(body))
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return Response(reply.body, status_code=reply.status, headers=reply.headers)

    def reset(self) -> None:
        """Forget what was received and any scripted replies (a server shared by several tests)."""
        with self.lock:
            self.requests.clear()
            self.accepted.clear()
            self.script.clear()

    def answer(self, *replies: Reply | int) -> None:
        with self.lock:
            self.script.extend(r if isinstance(r, Reply) else Reply(status=r) for r in replies)

    @property
    def posts(self) -> int:
        with self.lock:
            return len(self.requests)

    def items(self) -> list[dict[str, Any]]:
        """Every event accepted, in arrival order."""
        with self.lock:
            return [item for batch in self.accepted for item in batch["items"]]

    def batch_sizes(self) -> list[int]:
        with self.lock:
            return [len(batch["items"]) for batch in self.accepted]


class LiveServer:
    """uvicorn serving an ASGI app in a thread on 127.0.0.1; start/stop may be repeated on one port."""

    def __init__(
        self,
        app: Any,
        port: int | None = None,
        tls: Tls | None = None,
        require_client_cert: bool = True,
        lifespan: str = "off",
    ):
        self.app = app
        self.lifespan = lifespan
        self.port = port or free_port()
        self.tls = tls
        self.require_client_cert = require_client_cert
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/audit"

    def start(self) -> LiveServer:
        options: dict[str, Any] = {}
        if self.tls is not None:
            options = {
                "ssl_certfile": str(self.tls.server_cert),
                "ssl_keyfile": str(self.tls.server_key),
                "ssl_ca_certs": str(self.tls.ca_cert),
                "ssl_cert_reqs": ssl.CERT_REQUIRED if self.require_client_cert else ssl.CERT_NONE,
            }
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="error",
            lifespan=self.lifespan,
            access_log=False,
            timeout_graceful_shutdown=1,
            proxy_headers=False,
            **options,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"test server did not start on port {self.port}")
            time.sleep(0.005)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None


@contextmanager
def serving(app: Any, **options: Any) -> Iterator[LiveServer]:
    server = LiveServer(app, **options).start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Tls:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as PEM files."""

    directory: Path
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path


def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: Any, path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _certificate(subject: str, key: Any, issuer: tuple[str, Any] | None, *, ca: bool, usage: str | None) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = (
        (x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]), issuer[1]) if issuer else (name, key)
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    if usage == "server":
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif usage == "client":
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_tls(directory: Path) -> Tls:
    """Generate a fresh CA and certificates (ECDSA P-256, valid for a day) under `directory`."""
    from cryptography.hazmat.primitives import serialization

    def write_cert(cert: Any, path: Path) -> Path:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca = _certificate("kubetrail test CA", ca_key, None, ca=True, usage=None)
    server_key, client_key, other_key = _key(), _key(), _key()
    server = _certificate("localhost", server_key, ("kubetrail test CA", ca_key), ca=False, usage="server")
    client = _certificate("kube-apiserver", client_key, ("kubetrail test CA", ca_key), ca=False, usage="client")
    other = _certificate("someone else's CA", other_key, None, ca=True, usage=None)
    tls = Tls(
        directory=directory,
        ca_cert=write_cert(ca, directory / "ca.pem"),
        server_cert=write_cert(server, directory / "server.pem"),
        server_key=directory / "server-key.pem",
        client_cert=write_cert(client, directory / "client.pem"),
        client_key=directory / "client-key.pem",
        other_ca_cert=write_cert(other, directory / "other-ca.pem"),
    )
    _write_key(server_key, tls.server_key)
    _write_key(client_key, tls.client_key)
    return tls
