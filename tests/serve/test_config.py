"""`serve`'s configuration: YAML keys as flag names, flags win, paths relative to the file, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetrail.serve.config import (
    ServeConfigError,
    build_config,
    load_config_file,
    parse_listen,
    parse_size,
)


def test_defaults_listen_on_loopback_only(tmp_path: Path) -> None:
    config = build_config({}, {"store": str(tmp_path)})
    assert (config.host, config.port) == ("127.0.0.1", 8080)
    assert config.url == "http://127.0.0.1:8080"
    assert config.max_body_bytes == 12 << 20 and config.max_event_bytes == 256 << 10
    assert not config.authenticated


def test_a_file_with_every_option_and_flags_that_override_it(tmp_path: Path) -> None:
    for name in ("server.pem", "server-key.pem", "ca.pem", "tokens.csv"):
        (tmp_path / name).write_text("x")
    path = tmp_path / "serve.yaml"
    path.write_text(
        """
store: data
listen: 0.0.0.0:8443
cluster: prod
tls-cert: server.pem
tls-key: server-key.pem
client-ca: ca.pem
client-cert-clusters: {"CN=kube-apiserver": prod}
token-file: tokens.csv
tail:
  - logs/audit.log
  - {path: other/audit.log, cluster: staging}
tail-from: end
retention-days: 30
max-bytes: 2GiB
max-body-size: 8MiB
max-event-size: 100KiB
poll-interval: 0.5
"""
    )
    config = build_config(load_config_file(path), {"listen": "127.0.0.1:9000", "retention-days": 7})
    assert config.store == tmp_path / "data"
    assert (config.host, config.port) == ("127.0.0.1", 9000)
    assert config.retention_days == 7
    assert config.url == "https://127.0.0.1:9000"
    assert config.client_ca == tmp_path / "ca.pem" and config.authenticated
    assert [(spec.path, spec.cluster) for spec in config.tails] == [
        (tmp_path / "logs" / "audit.log", "prod"),
        (tmp_path / "other" / "audit.log", "staging"),
    ]
    assert not config.tail_from_start
    assert config.max_bytes == 2 << 30 and config.max_body_bytes == 8 << 20 and config.max_event_bytes == 100 << 10
    assert config.poll_interval == 0.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:9", ("::1", 9)), ("localhost:0", ("localhost", 0))],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", [":8080", "8080", "host:", "host:99999", "host:http"])
def test_listen_addresses_that_are_refused(text: str) -> None:
    with pytest.raises(ServeConfigError, match="HOST:PORT"):
        parse_listen(text)


@pytest.mark.parametrize(("text", "expected"), [("4096", 4096), ("1k", 1024), ("1.5MiB", 3 << 19), ("2G", 2 << 30)])
def test_sizes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_an_unknown_key_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text("store: x\nlisten-port: 8080\n")
    with pytest.raises(ServeConfigError) as caught:
        load_config_file(path)
    assert str(path) in str(caught.value) and "listen-port" in str(caught.value)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({}, "no store"),
        ({"store": "s", "cluster": "bad name"}, "invalid cluster"),
        ({"store": "s", "client-ca": "ca.pem"}, "need TLS"),
        ({"store": "s", "tls-cert": "c.pem"}, "both"),
        ({"store": "s", "token-file": "/nonexistent/tokens"}, "not a readable file"),
        ({"store": "s", "max-event-size": "20MiB"}, "larger than max-body-size"),
        ({"store": "s", "tail": [{"path": "a.log", "cluster": None}, {"path": "a.log", "cluster": "x"}]}, "twice"),
        ({"store": "s", "retention-days": 0}, "whole number"),
    ],
)
def test_invalid_settings_are_refused(flags: dict[str, object], message: str) -> None:
    with pytest.raises(ServeConfigError, match=message):
        build_config({}, flags)
