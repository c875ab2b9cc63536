"""The authentication matrix against a real `kubetrail serve` over TLS on loopback.

Tokens: none / wrong / valid. Client certificates: none / signed by another CA / signed by the client CA
(mapped to a cluster by its CN). A refused request writes nothing.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serve.helpers import (
    Certificates,
    ServeProcess,
    audit_event,
    audit_ids,
    event_list,
    make_certificates,
    serving,
)

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("pki"), client_cn="kube-apiserver-prod")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("auth") / "store"


@pytest.fixture(scope="module")
def server(certs: Certificates, store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tokens = tmp_path_factory.mktemp("tokens") / "tokens.csv"
    tokens.write_text("# token,cluster\nprod-token-0123456789,prod\nany-cluster-token-987,*\n")
    tokens.chmod(0o600)
    with serving(
        "--client-cert-cluster",
        "CN=kube-apiserver-prod:prod",
        "--store",
        str(store),
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        str(certs.server_cert),
        "--tls-key",
        str(certs.server_key),
        "--client-ca",
        str(certs.ca),
        "--token-file",
        str(tokens),
        "--log-level",
        "warning",
    ) as running:
        yield running


def client(certs: Certificates, cert: Path | None = None, key: Path | None = None) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(certs.ca))
    if cert is not None and key is not None:
        context.load_cert_chain(str(cert), str(key))
    return httpx.Client(verify=context, timeout=30)


def post(http: httpx.Client, url: str, number: int, token: str | None = None) -> httpx.Response:
    headers = JSON | ({"Authorization": f"Bearer {token}"} if token else {})
    return http.post(url, content=event_list([audit_event(number, prefix="auth")]), headers=headers)


def test_the_listening_url_is_https(server: ServeProcess) -> None:
    assert server.url.startswith("https://127.0.0.1:")


@pytest.mark.parametrize(
    ("token", "status"),
    [(None, 401), ("prod-token-012345678", 401), ("wrong", 401), ("prod-token-0123456789", 200)],
    ids=["no-token", "truncated-token", "wrong-token", "valid-token"],
)
def test_tokens(server: ServeProcess, certs: Certificates, token: str | None, status: int) -> None:
    with client(certs) as http:
        response = post(http, f"{server.url}/audit/prod", 1000 + status, token)
    assert response.status_code == status
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_valid_client_certificate_is_mapped_to_its_cluster(server: ServeProcess, certs: Certificates) -> None:
    with client(certs, certs.client_cert, certs.client_key) as http:
        response = post(http, f"{server.url}/k8s-audit", 2000)
        assert response.status_code == 200
        assert response.json()["cluster"] == "prod"
        assert post(http, f"{server.url}/audit/staging", 2001).status_code == 403


def test_a_certificate_from_another_ca_fails_the_handshake(server: ServeProcess, certs: Certificates) -> None:
    with client(certs, certs.stranger_cert, certs.stranger_key) as http, pytest.raises(httpx.HTTPError):
        post(http, f"{server.url}/audit/prod", 3000).status_code  # noqa: B018


def test_plain_http_to_the_tls_port_gets_no_answer(server: ServeProcess) -> None:
    with httpx.Client(timeout=10) as http, pytest.raises(httpx.HTTPError):
        post(http, server.url.replace("https://", "http://") + "/audit/prod", 4000)


def test_refused_requests_write_nothing(server: ServeProcess, certs: Certificates, store: Path) -> None:
    with client(certs) as http:
        assert post(http, f"{server.url}/audit/dev", 5001).status_code == 401
        assert post(http, f"{server.url}/audit/dev", 5002, "prod-token-0123456789").status_code == 403
        assert post(http, f"{server.url}/audit/dev", 5003, "any-cluster-token-987").status_code == 200
    with client(certs, certs.stranger_cert, certs.stranger_key) as http, pytest.raises(httpx.HTTPError):
        post(http, f"{server.url}/audit/dev", 5004)
    assert server.stop() == 0
    stored = set(audit_ids(store))
    assert audit_event(5003, prefix="auth")["auditID"] in stored
    assert not {audit_event(number, prefix="auth")["auditID"] for number in (5001, 5002, 5004)} & stored
