"""Run `kubetrail serve`: bind, serve HTTP(S) with uvicorn, and on SIGTERM/SIGINT drain, seal and exit 0.

uvicorn's own signal capture re-raises the signal after its graceful shutdown (so the process would die by
it); here the signals only ask the server to stop, and the store is sealed and closed before a clean exit.
With `--client-ca`, the TLS layer verifies any client certificate presented (a certificate from another CA
fails the handshake) and the receiver refuses requests with neither a certificate nor a token (401).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Generator
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kubetrail.collect.auth import SUBJECT_KEY, TLS_EXTENSION, subject_of
from kubetrail.extras import require
from kubetrail.gc_tuning import tune_for_streaming
from kubetrail.logs import configure as configure_logging
from kubetrail.serve.app import ServeApp, ShutdownSummary
from kubetrail.serve.config import ServeConfig, ServeConfigError, is_loopback
from kubetrail.serve.connections import GuardedConnection
from kubetrail.store import FileOps

log = logging.getLogger(__name__)

GRACEFUL_SECONDS = 15


class _WithPeer:
    """Adds the verified client certificate's subject to every request's scope (ASGI `tls` extension)."""

    def __init__(self, app: Any, tls: dict[str, Any]) -> None:
        self.app = app
        self.tls = tls

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            scope["extensions"] = {**(scope.get("extensions") or {}), TLS_EXTENSION: self.tls}
        await self.app(scope, receive, send)


class _PeerCertificate:
    """Tells the app who the TLS client is (uvicorn does not by itself)."""

    app: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        peer = transport.get_extra_info("peercert")
        if peer:
            subject = subject_of(peer)
            name = ",".join(f"{key}={value}" for key, values in subject.items() for value in values)
            self.app = _WithPeer(self.app, {"client_cert_name": name, "client_cert_error": None, SUBJECT_KEY: subject})


class PeerCertificateProtocol(_PeerCertificate, GuardedConnection, H11Protocol):
    """uvicorn's pure-Python h11 protocol with connection hygiene (`serve.connections`) and the client's
    certificate (used where httptools is not installed)."""


class FastProtocol(_PeerCertificate, GuardedConnection, HttpToolsProtocol):
    """uvicorn's httptools protocol (llhttp, the parser of Node.js) with the same hygiene and certificate."""


HTTP_PROTOCOL: type[asyncio.Protocol] = FastProtocol


class _Server(uvicorn.Server):
    """A uvicorn server whose shutdown signals are handled by the caller, without re-raising them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def request_exit(self, sig: int) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


def make_app(config: ServeConfig, *, file_ops: FileOps | None = None) -> Any:
    """The single-process app (store, detection, UI), or with `--bus` a stateless receiver publishing to NATS."""
    if config.bus is not None:
        require("nats", "serve --bus")
        from kubetrail.serve.bus_front import BusFrontApp

        return BusFrontApp(config)
    return ServeApp(config, file_ops=file_ops)


def bind(config: ServeConfig) -> socket.socket:
    """The listening socket, bound before anything else starts so that a taken port is a clear error."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: no 40 ms delayed-ACK stall on kept-alive requests
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError as error:
        sock.close()
        raise ServeConfigError(
            f"cannot listen on {config.host}:{config.port}: {error.strerror}",
            field="listen",
            hint="pick a free port (127.0.0.1:0 picks one) or stop what uses it",
        ) from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def uvicorn_config(app: Any, config: ServeConfig) -> uvicorn.Config:
    options: dict[str, Any] = {}
    if config.tls:
        options.update(ssl_certfile=str(config.tls_cert), ssl_keyfile=str(config.tls_key))
    if config.client_ca is not None:
        options.update(ssl_ca_certs=str(config.client_ca), ssl_cert_reqs=ssl.CERT_OPTIONAL)
    return uvicorn.Config(
        app,
        http=HTTP_PROTOCOL,
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        timeout_keep_alive=30,
        **options,
    )


async def _serve(app: ServeApp, sock: socket.socket, echo: Callable[[str], None]) -> None:
    config = app.config
    server = _Server(uvicorn_config(app.asgi, config))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.request_exit, sig)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if task.done():
        task.result()
        return
    port = sock.getsockname()[1]
    url = dataclasses.replace(config, port=port).url
    target = f"bus {config.bus}" if config.bus is not None else f"store {config.store}"
    echo(f"kubetrail serve: listening on {url} ({target})")
    echo(f"  POST audit events to {url}/audit/<cluster> or {url}/k8s-audit; metrics at {url}/metrics")
    if config.ui and config.ui_port is None and config.bus is None:
        echo(f"  web UI at {url}/ui/")
    for tailer in app.tailers:
        echo(f"  tailing {tailer.path}")
    for source in getattr(app, "sources", ()):
        path = getattr(source, "path", None)
        where = f": POST deliveries to {url}{path}/<cluster>" if path else ""
        echo(f"  source {source.name}{where}")
    app.start_background()
    await task


def run(config: ServeConfig, echo: Callable[[str], None]) -> ShutdownSummary:
    """Serve until SIGTERM/SIGINT; returns once the store is sealed and closed."""
    configure_logging(config.log_level)
    if not is_loopback(config.host) and not (config.tls and config.authenticated):
        log.warning("listening on %s without TLS and authentication: anyone who can reach it can write", config.host)
    sock = bind(config)
    app = make_app(config)
    try:
        app.open()
    except BaseException:
        sock.close()
        raise
    summary: ShutdownSummary | None = None
    try:
        tune_for_streaming(collect=True)
        asyncio.run(_serve(app, sock, echo))
    except SystemExit as error:
        raise ServeConfigError(f"the HTTP server stopped at start-up (exit {error.code})") from None
    finally:
        echo("kubetrail serve: stopping; sealing the store …")
        summary = app.close()
        sock.close()
        sys.stdout.flush()
    return summary


class BackgroundServer:
    """`serve` in a thread of this process (for `demo`, embedding and tests): same app, same HTTP server."""

    def __init__(self, config: ServeConfig, *, file_ops: FileOps | None = None) -> None:
        self.config = config
        self.app = make_app(config, file_ops=file_ops)
        self.url = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 30.0) -> str:
        """Open the store, listen, start tailers; returns the URL once requests are served."""
        sock = bind(self.config)
        try:
            self.app.open()
        except BaseException:
            sock.close()
            raise
        self._server = _Server(uvicorn_config(self.app.asgi, self.config))
        server = self._server

        def serve() -> None:
            try:
                asyncio.run(server.serve(sockets=[sock]))
            except BaseException as error:
                self._error = error
            finally:
                sock.close()

        self._thread = threading.Thread(target=serve, name="kubetrail-serve", daemon=True)
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.02)):
            if server.started or not self._thread.is_alive():
                break
            deadline.wait(0.02)
        if not server.started:
            self.stop()
            raise ServeConfigError(f"the HTTP server did not start: {self._error}")
        self.url = dataclasses.replace(self.config, port=sock.getsockname()[1]).url
        self.app.start_background()
        return self.url

    def stop(self) -> ShutdownSummary:
        """Drain requests, stop tailers, seal and close the store."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        summary: ShutdownSummary = self.app.close()
        return summary
