"""The webhook kubeconfig reader: clientcmd's selection, path and validation rules."""

from __future__ import annotations

import base64
import json
import ssl
from pathlib import Path

import pytest

from kubetrail.emit.kubeconfig import KubeconfigError, load_kubeconfig, parse_kubeconfig
from kubetrail.errors import KubetrailError

from .helpers_http import make_tls

# The example webhook configuration of the Kubernetes documentation (authentication / audit pages):
# no apiVersion or kind, comments, absolute placeholder paths.
DOCS_EXAMPLE = """\
# clusters refers to the remote service.
clusters:
  - name: name-of-remote-authn-service
    cluster:
      certificate-authority: /path/to/ca.pem         # CA for verifying the remote service.
      server: https://authn.example.com/authenticate # URL of the remote service.

# users refers to the API server's webhook configuration.
users:
  - name: name-of-api-server
    user:
      client-certificate: /path/to/cert.pem # cert for the webhook plugin to use
      client-key: /path/to/key.pem          # key matching the cert

# kubeconfig files require a context. Provide one for the API server.
current-context: webhook
contexts:
- context:
    cluster: name-of-remote-authn-service
    user: name-of-api-server
  name: webhook
"""


def write(tmp_path: Path, text: str, name: str = "webhook.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_docs_example_loads(tmp_path: Path) -> None:
    config = load_kubeconfig(write(tmp_path, DOCS_EXAMPLE))
    assert config.server == "https://authn.example.com/authenticate"
    assert config.certificate_authority == "/path/to/ca.pem"
    assert config.client_certificate == "/path/to/cert.pem"
    assert config.client_key == "/path/to/key.pem"
    assert (config.cluster, config.user) == ("name-of-remote-authn-service", "name-of-api-server")
    assert config.bearer_token() == ""


def test_docs_example_placeholder_files_fail_when_tls_is_built(tmp_path: Path) -> None:
    config = load_kubeconfig(write(tmp_path, DOCS_EXAMPLE))
    with pytest.raises(KubeconfigError) as caught:
        config.ssl_context()
    assert caught.value.field == "clusters[name-of-remote-authn-service].cluster.certificate-authority"
    assert "/path/to/ca.pem" in str(caught.value)
    assert str(tmp_path / "webhook.yaml") in str(caught.value)


def test_current_context_selects_cluster_and_user(tmp_path: Path) -> None:
    text = """
apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "http://a.example:1/audit"}
- name: b
  cluster: {server: "https://b.example:2/audit", insecure-skip-tls-verify: true}
users:
- name: u1
  user: {token: one}
- name: u2
  user: {token: two}
contexts:
- name: first
  context: {cluster: a, user: u1}
- name: second
  context: {cluster: b, user: u2}
current-context: second
"""
    config = load_kubeconfig(write(tmp_path, text))
    assert config.server == "https://b.example:2/audit"
    assert config.insecure_skip_tls_verify is True
    assert config.bearer_token() == "two"
    context = config.ssl_context()
    assert context is not None and context.verify_mode == ssl.CERT_NONE and not context.check_hostname


def test_relative_paths_resolve_against_the_files_directory(tmp_path: Path) -> None:
    folder = tmp_path / "etc" / "kubernetes"
    folder.mkdir(parents=True)
    text = """
clusters: [{name: c, cluster: {server: "https://audit.example/x", certificate-authority: pki/ca.pem}}]
users: [{name: u, user: {client-certificate: ../cert.pem, client-key: key.pem, tokenFile: token}}]
contexts: [{name: w, context: {cluster: c, user: u}}]
current-context: w
"""
    (folder / "token").write_text("s3cret\n")
    config = load_kubeconfig(write(folder, text))
    assert config.certificate_authority == str(folder / "pki" / "ca.pem")
    assert Path(config.client_certificate).resolve() == tmp_path / "etc" / "cert.pem"
    assert config.client_key == str(folder / "key.pem")
    assert config.bearer_token() == "s3cret"


def test_token_file_is_reread_and_wins_over_token(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first")
    config = parse_kubeconfig(
        {
            "clusters": [{"name": "c", "cluster": {"server": "https://h/x"}}],
            "users": [{"name": "u", "user": {"token": "static", "tokenFile": str(token)}}],
            "contexts": [{"name": "w", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "w",
        }
    )
    assert config.bearer_token() == "first"
    token.write_text("rotated\n")
    assert config.bearer_token() == "rotated"


def test_json_kubeconfig_and_data_fields(tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "pki")
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c",
                "cluster": {
                    "server": "https://127.0.0.1:9/audit",
                    "certificate-authority-data": base64.b64encode(tls.ca_cert.read_bytes()).decode(),
                },
            }
        ],
        "users": [
            {
                "name": "u",
                "user": {
                    "client-certificate-data": base64.b64encode(tls.client_cert.read_bytes()).decode(),
                    "client-key-data": base64.b64encode(tls.client_key.read_bytes()).decode(),
                },
            }
        ],
        "contexts": [{"name": "w", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "w",
    }
    config = load_kubeconfig(write(tmp_path, json.dumps(document), "webhook.json"))
    assert config.certificate_authority_data == tls.ca_cert.read_bytes()
    context = config.ssl_context()
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED
    # As in client-go, the configured CA replaces the system roots.
    (only_ca,) = context.get_ca_certs()
    assert "kubetrail test CA" in str(only_ca.get("subject"))


def test_http_server_has_no_tls_context(tmp_path: Path) -> None:
    config = parse_kubeconfig(
        {
            "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:8080/audit"}}],
            "users": [{"name": "u"}],
            "contexts": [{"name": "w", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "w",
        }
    )
    assert config.ssl_context() is None


def test_repr_never_shows_the_token() -> None:
    config = parse_kubeconfig(
        {
            "clusters": [{"name": "c", "cluster": {"server": "https://h/x"}}],
            "users": [{"name": "u", "user": {"token": "very-secret-token"}}],
            "contexts": [{"name": "w", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "w",
        }
    )
    assert "very-secret-token" not in repr(config)


BASE_CLUSTER = {"server": "https://audit.example/x"}


def kubeconfig(cluster: dict[str, object] | None = None, user: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "clusters": [{"name": "c", "cluster": BASE_CLUSTER if cluster is None else cluster}],
        "users": [{"name": "u", "user": user or {}}],
        "contexts": [{"name": "w", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "w",
    }


@pytest.mark.parametrize(
    ("document", "field", "message"),
    [
        ({**kubeconfig(), "current-context": ""}, "current-context", "no current-context"),
        ({**kubeconfig(), "current-context": "nope"}, "current-context", "'nope' does not exist"),
        (kubeconfig(cluster={"certificate-authority": "/ca.pem"}), "clusters[c].cluster.server", "no server found"),
        (kubeconfig(cluster={"server": "audit.example:443"}), "clusters[c].cluster.server", "invalid server URL"),
        (
            kubeconfig(cluster={**BASE_CLUSTER, "certificate-authority": "/a", "certificate-authority-data": "Zm9v"}),
            "clusters[c].cluster",
            "both specified",
        ),
        (
            kubeconfig(cluster={**BASE_CLUSTER, "certificate-authority": "/a", "insecure-skip-tls-verify": True}),
            "clusters[c].cluster.insecure-skip-tls-verify",
            "insecure flag is not allowed",
        ),
        (
            kubeconfig(cluster={**BASE_CLUSTER, "insecure-skip-tls-verify": "yes please"}),
            "clusters[c].cluster.insecure-skip-tls-verify",
            "expected true or false",
        ),
        (
            kubeconfig(cluster={**BASE_CLUSTER, "certificate-authority-data": "not base64!"}),
            "clusters[c].cluster.certificate-authority-data",
            "not valid base64",
        ),
        (kubeconfig(user={"client-certificate": "/c.pem"}), "users[u].user", "client-key"),
        (kubeconfig(user={"client-key": "/k.pem"}), "users[u].user", "client-certificate"),
        (
            kubeconfig(user={"client-certificate": "/c", "client-certificate-data": "Zm9v", "client-key": "/k"}),
            "users[u].user",
            "both specified",
        ),
        ({**kubeconfig(), "contexts": [{"name": "w", "context": {"cluster": "x", "user": "u"}}]}, "cluster", "'x'"),
        ({**kubeconfig(), "contexts": [{"name": "w", "context": {"cluster": "c"}}]}, "user", "not specified"),
        ({**kubeconfig(), "clusters": {"c": {}}}, "clusters", "expected a list"),
        ({**kubeconfig(), "users": [{"user": {}}]}, "users[0].name", "missing name"),
    ],
)
def test_invalid_configs_name_the_field(document: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(KubeconfigError) as caught:
        parse_kubeconfig(document, source="hook.yaml")
    error = caught.value
    assert isinstance(error, KubetrailError)
    assert field in error.field
    assert message in str(error)
    assert str(error).startswith("hook.yaml: ")


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="does not exist"):
        load_kubeconfig(tmp_path / "absent.yaml")
    with pytest.raises(KubeconfigError, match="is a directory"):
        load_kubeconfig(tmp_path)
    with pytest.raises(KubeconfigError, match="not valid YAML") as caught:
        load_kubeconfig(write(tmp_path, "clusters: [\n  - {name: c\n"))
    assert caught.value.field.startswith("line ")


def test_unreadable_token_file_is_reported(tmp_path: Path) -> None:
    config = parse_kubeconfig(kubeconfig(user={"tokenFile": str(tmp_path / "missing-token")}), source="hook.yaml")
    with pytest.raises(KubeconfigError) as caught:
        config.bearer_token()
    assert caught.value.field == "users[u].user.tokenFile"


def test_client_key_not_matching_certificate_is_reported(tmp_path: Path) -> None:
    tls = make_tls(tmp_path)
    config = parse_kubeconfig(
        kubeconfig(user={"client-certificate": str(tls.client_cert), "client-key": str(tls.server_key)})
    )
    with pytest.raises(KubeconfigError, match="do not load as a PEM pair"):
        config.ssl_context()


def test_the_shipped_example_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "webhook-kubeconfig.yaml"
    config = load_kubeconfig(example)
    assert config.server == "https://kubetrail.example.internal:9443/audit/prod-eu-1"
    assert config.certificate_authority == str(example.parent / "pki" / "ca.pem")
    assert config.client_key == str(example.parent / "pki" / "apiserver-audit-client-key.pem")
