"""Where serve puts the UI: beside the receiver, on its own port, or nowhere; and when it refuses to start."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from kubetrail.serve.config import ServeConfigError, build_config
from tests.serve.helpers import free_port, serving


def test_ui_port_serves_the_ui_apart_from_the_receiver(tmp_path: Path) -> None:
    port = free_port()
    with serving("--store", str(tmp_path / "store"), "--listen", "127.0.0.1:0", "--ui-port", str(port)) as process:
        assert httpx.get(f"http://127.0.0.1:{port}/ui/", timeout=10).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 404
        assert httpx.get(f"{process.url}/ui/", timeout=10).status_code == 404
        assert httpx.get(f"{process.url}/healthz", timeout=10).status_code == 200


def test_no_ui_leaves_only_the_receiver(tmp_path: Path) -> None:
    with serving("--store", str(tmp_path / "store"), "--listen", "127.0.0.1:0", "--no-ui") as process:
        assert httpx.get(f"{process.url}/ui/", timeout=10).status_code == 404


def test_a_taken_ui_port_fails_at_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        arguments = ("--store", str(tmp_path / "store"), "--listen", "127.0.0.1:0", "--ui-port", str(port))
        with pytest.raises(AssertionError, match="for the UI"), serving(*arguments):
            pass


@pytest.mark.parametrize(
    ("flags", "refused"),
    [
        ({}, True),
        ({"ui-insecure": True}, False),
        ({"ui": False}, False),
    ],
)
def test_non_loopback_needs_ui_auth_or_an_explicit_choice(
    tmp_path: Path, flags: dict[str, object], refused: bool
) -> None:
    values = {"store": str(tmp_path), "listen": "0.0.0.0:8080", **flags}
    if refused:
        with pytest.raises(ServeConfigError) as caught:
            build_config({}, values)
        assert caught.value.field == "ui"
    else:
        build_config({}, values)


def test_ui_auth_files_make_a_public_address_acceptable(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("0123456789abcdef0123\n")
    config = build_config({}, {"store": str(tmp_path), "listen": "0.0.0.0:8080", "ui-token-file": str(tokens)})
    assert config.ui_token_file == tokens and config.ui
