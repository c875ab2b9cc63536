"""How `serve` runs the UI: on the receiver's port (paths under `/ui/`), or on its own port with `--ui-port`.

The UI's own port is bound when the service is opened, so a taken port fails `serve` before anything runs; its
HTTP server then runs in a thread beside the receiver's, with the same TLS settings.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from kubetrail.errors import SettingError
from kubetrail.store import Store
from kubetrail.ui.app import WithUI, build_ui
from kubetrail.ui.auth import UIAuth, UIAuthError
from kubetrail.ui.data import UIData
from kubetrail.ui.snapshot import StoreSnapshot

log = logging.getLogger(__name__)


class UIMountError(SettingError):
    """The UI cannot be served as configured: names the setting (`field`) and how to fix it."""


@dataclass(frozen=True)
class UISettings:
    """What the UI needs from `serve`'s configuration."""

    host: str = "127.0.0.1"
    ui_port: int | None = None
    ui_token_file: Path | None = None
    ui_users_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None


class UIService:
    """The UI of one `serve`: `wrap` joins it to the receiver's app; `start`/`stop` run its own port."""

    def __init__(self, config: UISettings, store: Store) -> None:
        try:
            auth = (
                UIAuth.load(config.ui_token_file, config.ui_users_file)
                if config.ui_token_file is not None or config.ui_users_file is not None
                else None
            )
        except UIAuthError as error:
            raise UIMountError(error.message, file=error.file, field="ui", hint=error.hint) from None
        self.config = config
        self.snapshot = StoreSnapshot(store)
        self.app = build_ui(UIData(self.snapshot), auth)
        self.url = ""
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        if config.ui_port is not None:
            self._socket = self._bind(config.host, config.ui_port)

    @staticmethod
    def _bind(host: str, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            sock.close()
            raise UIMountError(
                f"cannot listen on {host}:{port} for the UI: {error.strerror}", field="ui-port", hint="pick a free port"
            ) from None
        sock.listen(128)
        sock.setblocking(False)
        return sock

    def wrap(self, receiver: ASGIApp) -> ASGIApp:
        """The app for the receiver's port: with the UI's paths unless the UI has its own port."""
        return receiver if self._socket is not None else WithUI(receiver, self.app)

    def start(self) -> None:
        """Serve the UI's own port (if any) in a thread."""
        sock = self._socket
        if sock is None:
            return
        tls = self.config.tls
        server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                lifespan="off",
                access_log=False,
                log_level="warning",
                server_header=False,
                ssl_certfile=str(self.config.tls_cert) if tls else None,
                ssl_keyfile=str(self.config.tls_key) if tls else None,
            )
        )
        self._server = server
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), name="kubetrail-ui", daemon=True
        )
        self._thread.start()
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        self.url = f"{'https' if self.config.tls else 'http'}://{host}:{sock.getsockname()[1]}/ui/"
        log.info("web UI on %s", self.url)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self.snapshot.close()


def open_ui(config: UISettings, store: Store) -> UIService:
    """The UI service of a store."""
    return UIService(config, store)
