"""`kubetrail apiserver-config`: the kube-apiserver flags and webhook kubeconfig that point at a kubetrail receiver.

The kubeconfig is the format `--audit-webhook-config-file` reads (clientcmd's: a cluster with the server URL
and the CA that signed the receiver's certificate, a user with a bearer token or a client certificate, and a
current context joining them). Truncation is switched on so that no event or batch exceeds the receiver's
default limits (the apiserver's truncation limits are 100 KiB per event and 10 MiB per batch).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import yaml

from kubetrail.errors import KubetrailError

DEFAULT_KUBECONFIG_PATH = "/etc/kubernetes/audit/webhook-kubeconfig.yaml"
DEFAULT_POLICY_PATH = "/etc/kubernetes/audit/policy.yaml"


class ApiserverConfigError(KubetrailError):
    """Options that cannot make a working webhook configuration."""

    def __init__(self, message: str, *, field: str = "", hint: str = "") -> None:
        self.field = field
        self.hint = hint
        super().__init__(f"{field}: {message}" if field else message)


def apiserver_flags(kubeconfig_path: str, policy_path: str, mode: str) -> list[str]:
    """The kube-apiserver flags that enable the webhook audit backend."""
    return [
        f"--audit-policy-file={policy_path}",
        f"--audit-webhook-config-file={kubeconfig_path}",
        f"--audit-webhook-mode={mode}",
        "--audit-webhook-version=audit.k8s.io/v1",
        "--audit-webhook-truncate-enabled=true",
    ]


def _read(path: str, field: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ApiserverConfigError(f"cannot read {path}: {error.strerror}", field=field) from None


def webhook_kubeconfig(
    url: str,
    *,
    token: str | None = None,
    token_file: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    ca: str | None = None,
    embed: bool = False,
) -> dict[str, Any]:
    """The webhook kubeconfig as a mapping (paths absolute, or file contents embedded as `*-data`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiserverConfigError(f"{url!r} is not an http(s) URL", field="--url", hint="https://HOST:PORT/audit/NAME")
    if not parts.path.startswith("/audit/") and parts.path != "/k8s-audit":
        raise ApiserverConfigError(
            "the URL must end in /audit/<cluster> (or /k8s-audit)", field="--url", hint=f"{url.rstrip('/')}/audit/prod"
        )
    if (client_cert is None) != (client_key is None):
        raise ApiserverConfigError("a client certificate needs its key", field="--client-cert/--client-key")
    if client_cert is not None and (token or token_file):
        raise ApiserverConfigError("use either a token or a client certificate", field="--token/--client-cert")
    if token and token_file:
        raise ApiserverConfigError("use either --token or --token-file", field="--token")
    if parts.scheme == "http" and (ca or client_cert):
        raise ApiserverConfigError("a CA or client certificate needs an https:// URL", field="--url")

    def file_field(section: dict[str, Any], name: str, path: str | None, flag: str) -> None:
        if path is None:
            return
        if embed:
            section[f"{name}-data"] = base64.b64encode(_read(path, flag)).decode()
        else:
            section[name] = os.path.abspath(path)

    cluster: dict[str, Any] = {"server": url}
    file_field(cluster, "certificate-authority", ca, "--ca")
    user: dict[str, Any] = {}
    file_field(user, "client-certificate", client_cert, "--client-cert")
    file_field(user, "client-key", client_key, "--client-key")
    if token:
        user["token"] = token
    if token_file:
        user["tokenFile"] = os.path.abspath(token_file)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kubetrail", "cluster": cluster}],
        "users": [{"name": "kube-apiserver", "user": user}],
        "contexts": [{"name": "webhook", "context": {"cluster": "kubetrail", "user": "kube-apiserver"}}],
        "current-context": "webhook",
    }


@click.command(name="apiserver-config")
@click.option("--url", required=True, help="The receiver's URL, ending in /audit/<cluster>.")
@click.option("--token", help="Bearer token the apiserver sends (a line of serve's --token-file).")
@click.option("--token-file", type=click.Path(dir_okay=False), help="Reference a token file instead (tokenFile).")
@click.option("--client-cert", type=click.Path(dir_okay=False), help="Client certificate the apiserver presents.")
@click.option("--client-key", type=click.Path(dir_okay=False), help="Its private key.")
@click.option("--ca", type=click.Path(dir_okay=False), help="CA that signed the receiver's TLS certificate.")
@click.option("--embed", is_flag=True, help="Embed the CA, certificate and key (as *-data) instead of paths.")
@click.option(
    "--kubeconfig-path", default=DEFAULT_KUBECONFIG_PATH, show_default=True, help="Where the apiserver reads it."
)
@click.option("--policy-path", default=DEFAULT_POLICY_PATH, show_default=True, help="The audit policy's path.")
@click.option("--mode", type=click.Choice(["batch", "blocking", "blocking-strict"]), default="batch", show_default=True)
@click.option("--write", "write_to", type=click.Path(dir_okay=False), help="Write the kubeconfig here (mode 0600).")
def apiserver_config_command(
    url: str,
    token: str | None,
    token_file: str | None,
    client_cert: str | None,
    client_key: str | None,
    ca: str | None,
    embed: bool,
    kubeconfig_path: str,
    policy_path: str,
    mode: str,
    write_to: str | None,
) -> None:
    """Print the kube-apiserver flags and the webhook kubeconfig that send audit events to `kubetrail serve`.

    \b
    Examples:
      kubetrail apiserver-config --url https://kubetrail.internal:8443/audit/prod --ca ca.pem \\
          --client-cert apiserver-audit.pem --client-key apiserver-audit-key.pem --embed
      kubetrail apiserver-config --url https://kubetrail.internal:8443/audit/prod --ca ca.pem \\
          --token-file /etc/kubernetes/audit/token --write webhook-kubeconfig.yaml
    """
    document = webhook_kubeconfig(
        url, token=token, token_file=token_file, client_cert=client_cert, client_key=client_key, ca=ca, embed=embed
    )
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    click.echo("# kube-apiserver flags (add them to its command line or static pod manifest):")
    for flag in apiserver_flags(kubeconfig_path, policy_path, mode):
        click.echo(flag)
    if urlsplit(url).scheme == "http":
        click.echo("# warning: plain http sends audit events (and any token) unencrypted; use https with --ca")
    if write_to:
        fd = os.open(write_to, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        click.echo(f"# webhook kubeconfig written to {write_to}; install it as {kubeconfig_path}")
        return
    click.echo(f"\n# {kubeconfig_path} (keep it readable only by the apiserver: it may hold a token or key):")
    click.echo(text, nl=False)
