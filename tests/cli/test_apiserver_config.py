"""`kubetrail apiserver-config`: the printed flags and the kubeconfig, read back as kube-apiserver reads it."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import yaml
from click.testing import CliRunner

from kubetrail.cli.main import cli
from kubetrail.emit.kubeconfig import load_kubeconfig, parse_kubeconfig
from tests.serve.helpers import make_certificates


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["apiserver-config", *args])
    return result.exit_code, result.output


def kubeconfig_part(output: str) -> dict[str, object]:
    document = yaml.safe_load(output[output.index("apiVersion: v1") :])
    assert isinstance(document, dict)
    return document


def test_the_flags_enable_the_webhook_backend_in_batch_mode() -> None:
    code, output = run("--url", "https://kt.internal:8443/audit/prod", "--token", "t0k3n")
    assert code == 0
    flags = [line for line in output.splitlines() if line.startswith("--")]
    assert "--audit-webhook-config-file=/etc/kubernetes/audit/webhook-kubeconfig.yaml" in flags
    assert "--audit-webhook-mode=batch" in flags
    assert "--audit-policy-file=/etc/kubernetes/audit/policy.yaml" in flags
    assert "--audit-webhook-truncate-enabled=true" in flags


def test_the_token_kubeconfig_is_read_by_the_apiserver_rules(tmp_path: Path) -> None:
    code, output = run("--url", "https://kt.internal:8443/audit/prod", "--token", "t0k3n")
    assert code == 0
    document = kubeconfig_part(output)
    config = parse_kubeconfig(document, source="printed", base=tmp_path)
    assert config.server == "https://kt.internal:8443/audit/prod"
    assert config.bearer_token() == "t0k3n"
    assert document["current-context"] == "webhook"


def test_client_certificates_embedded_and_written_with_tight_permissions(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "pki")
    target = tmp_path / "webhook.yaml"
    code, output = run(
        "--url",
        "https://127.0.0.1:8443/audit/prod",
        "--client-cert",
        str(certs.client_cert),
        "--client-key",
        str(certs.client_key),
        "--ca",
        str(certs.ca),
        "--embed",
        "--write",
        str(target),
    )
    assert code == 0, output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    config = load_kubeconfig(target)
    assert config.client_certificate_data == certs.client_cert.read_bytes()
    assert config.certificate_authority_data == certs.ca.read_bytes()
    assert config.ssl_context() is not None
    document = yaml.safe_load(target.read_text())
    user = document["users"][0]["user"]
    assert base64.b64decode(user["client-key-data"]) == certs.client_key.read_bytes()


def test_paths_are_made_absolute_without_embedding(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "pki")
    code, output = run("--url", "https://kt:1/audit/a", "--ca", str(certs.ca), "--token-file", "token")
    assert code == 0
    cluster = kubeconfig_part(output)["clusters"][0]["cluster"]  # type: ignore[index]
    assert cluster["certificate-authority"] == str(certs.ca)
    user = kubeconfig_part(output)["users"][0]["user"]  # type: ignore[index]
    assert Path(user["tokenFile"]).is_absolute()


def test_bad_combinations_are_refused_with_a_hint() -> None:
    assert run("--url", "ftp://x/audit/a")[0] == 2
    code, output = run("--url", "https://x:1/events")
    assert code == 2 and "/audit/<cluster>" in output
    code, output = run("--url", "https://x:1/audit/a", "--client-cert", "c.pem")
    assert code == 2 and "key" in output
    code, output = run("--url", "https://x:1/audit/a", "--token", "t", "--client-cert", "c", "--client-key", "k")
    assert code == 2


def test_plain_http_is_warned_about() -> None:
    code, output = run("--url", "http://127.0.0.1:8080/audit/dev", "--token", "t")
    assert code == 0 and "unencrypted" in output
