"""Read a kubeconfig-format file as kube-apiserver reads `--audit-webhook-config-file`.

clientcmd's rules: `current-context` names a context, which names a cluster (`server`,
`certificate-authority[-data]`, `insecure-skip-tls-verify`, `tls-server-name`) and a user
(`client-certificate[-data]`, `client-key[-data]`, `token`, `tokenFile`); `*-data` fields are
base64; relative paths are resolved against the file's directory; a `-data` field and its file
field may not both be set; CA plus insecure-skip-tls-verify is refused. Files named by the config
are checked when the TLS context is built (`WebhookClientConfig.ssl_context`), not at parse time,
so the documentation's example with placeholder paths parses.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from kubetrail.emit.backend import BackendError

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class KubeconfigError(BackendError):
    """A webhook kubeconfig that cannot be used; names the file and the field."""

    def __init__(self, message: str, *, file: str, field: str = "", hint: str = "") -> None:
        self.file = file
        self.field = field
        self.message = message
        self.hint = hint
        where = f"{file}: {field}: " if field else f"{file}: "
        super().__init__(where + message + (f" (hint: {hint})" if hint else ""))


@dataclass(frozen=True, slots=True)
class WebhookClientConfig:
    """Everything needed to reach a webhook: the URL, how to trust it, and how to authenticate."""

    server: str
    source: str = "<kubeconfig>"
    cluster: str = ""
    user: str = ""
    certificate_authority: str = ""
    certificate_authority_data: bytes = b""
    insecure_skip_tls_verify: bool = False
    tls_server_name: str = ""
    client_certificate: str = ""
    client_certificate_data: bytes = b""
    client_key: str = ""
    client_key_data: bytes = b""
    token: str = ""
    token_file: str = ""

    def __repr__(self) -> str:
        """Never show secrets (tokens, keys) in logs or tracebacks."""
        return f"WebhookClientConfig(server={self.server!r}, cluster={self.cluster!r}, user={self.user!r})"

    @property
    def has_ca(self) -> bool:
        return bool(self.certificate_authority or self.certificate_authority_data)

    @property
    def has_client_certificate(self) -> bool:
        return bool(self.client_certificate or self.client_certificate_data)

    def bearer_token(self) -> str:
        """The bearer token to send: `tokenFile` (re-read each call, so rotation works) wins over `token`."""
        if self.token_file:
            try:
                return Path(self.token_file).read_text(encoding="utf-8").strip()
            except OSError as error:
                if self.token:
                    return self.token
                raise KubeconfigError(
                    f"unable to read tokenFile {self.token_file}: {error.strerror}",
                    file=self.source,
                    field=f"users[{self.user}].user.tokenFile",
                ) from None
        return self.token

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS settings for an https server (None for http); reads the CA and client files now.

        As in client-go, a configured CA replaces the system roots instead of adding to them.
        """
        if urlsplit(self.server).scheme != "https":
            return None
        if self.insecure_skip_tls_verify:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self.certificate_authority_data:
            try:
                context = ssl.create_default_context(cadata=self.certificate_authority_data.decode("ascii"))
            except (ssl.SSLError, ValueError, UnicodeDecodeError) as error:
                raise self._field_error("certificate-authority-data", f"not a PEM certificate: {error}") from None
        elif self.certificate_authority:
            try:
                context = ssl.create_default_context(cafile=self.certificate_authority)
            except FileNotFoundError:
                raise self._field_error(
                    "certificate-authority", f"unable to read certificate-authority {self.certificate_authority}"
                ) from None
            except (ssl.SSLError, OSError) as error:
                raise self._field_error(
                    "certificate-authority", f"{self.certificate_authority} is not a PEM certificate: {error}"
                ) from None
        else:
            context = ssl.create_default_context()
        if self.has_client_certificate:
            self._load_client_certificate(context)
        return context

    def _field_error(self, field: str, message: str) -> KubeconfigError:
        section = f"users[{self.user}].user" if field.startswith("client") else f"clusters[{self.cluster}].cluster"
        return KubeconfigError(message, file=self.source, field=f"{section}.{field}")

    def _load_client_certificate(self, context: ssl.SSLContext) -> None:
        with (
            _pem_path(self.client_certificate, self.client_certificate_data) as cert,
            _pem_path(self.client_key, self.client_key_data) as key,
        ):
            for field, path in (("client-certificate", cert), ("client-key", key)):
                if not os.access(path, os.R_OK):
                    raise self._field_error(field, f"unable to read {field} {path}")
            try:
                context.load_cert_chain(certfile=cert, keyfile=key)
            except (ssl.SSLError, OSError) as error:
                raise self._field_error(
                    "client-certificate", f"client certificate and key do not load as a PEM pair: {error}"
                ) from None


@contextlib.contextmanager
def _pem_path(path: str, data: bytes) -> Iterator[str]:
    """A file path holding `data` (ssl loads client certificates from files only), else `path` itself.

    In-memory (memfd) where the platform allows, else a private temporary file removed at once.
    """
    if not data:
        yield path
        return
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("kubetrail-pem", 0)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as private:  # pragma: no cover - non-Linux
        target = Path(private) / "pem"
        target.touch(mode=0o600)
        target.write_bytes(data)
        yield str(target)


def _mapping(value: object, *, file: str, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise KubeconfigError(f"expected a mapping, got {type(value).__name__}", file=file, field=field)
    return value


def _named(entries: object, kind: str, body: str, *, file: str) -> dict[str, Mapping[str, Any]]:
    """`clusters`, `users` or `contexts`: a list of `{name, <body>}` turned into a dict by name."""
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise KubeconfigError(f"expected a list, got {type(entries).__name__}", file=file, field=kind)
    found: dict[str, Mapping[str, Any]] = {}
    for index, entry in enumerate(entries):
        item = _mapping(entry, file=file, field=f"{kind}[{index}]")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise KubeconfigError("missing name", file=file, field=f"{kind}[{index}].name")
        found[name] = _mapping(item.get(body), file=file, field=f"{kind}[{name}].{body}")
    return found


def _text(section: Mapping[str, Any], key: str, *, file: str, field: str) -> str:
    value = section.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise KubeconfigError(f"expected a string, got {value!r}", file=file, field=f"{field}.{key}")
    return value


def _data(section: Mapping[str, Any], key: str, *, file: str, field: str) -> bytes:
    text = _text(section, key, file=file, field=field)
    if not text:
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KubeconfigError(
            "not valid base64", file=file, field=f"{field}.{key}", hint="encode the PEM file with `base64 -w0`"
        ) from None


def _path(section: Mapping[str, Any], key: str, base: Path, *, file: str, field: str) -> str:
    text = _text(section, key, file=file, field=field)
    if not text:
        return ""
    candidate = Path(text).expanduser()
    return str(candidate if candidate.is_absolute() else base / candidate)


def _flag(section: Mapping[str, Any], key: str, *, file: str, field: str) -> bool:
    value = section.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise KubeconfigError(f"expected true or false, got {value!r}", file=file, field=f"{field}.{key}")
    return value


def parse_kubeconfig(
    document: object, *, source: str = "<kubeconfig>", base: Path | None = None
) -> WebhookClientConfig:
    """The client settings a parsed kubeconfig document selects through its current context."""
    base = base or Path.cwd()
    root = _mapping(document, file=source, field="")
    clusters = _named(root.get("clusters"), "clusters", "cluster", file=source)
    users = _named(root.get("users"), "users", "user", file=source)
    contexts = _named(root.get("contexts"), "contexts", "context", file=source)
    current = _text(root, "current-context", file=source, field="")
    if not current:
        raise KubeconfigError(
            "no current-context is set",
            file=source,
            field="current-context",
            hint="add `current-context: webhook` naming an entry of `contexts`",
        )
    if current not in contexts:
        raise KubeconfigError(f"context {current!r} does not exist", file=source, field="current-context")
    context = contexts[current]
    cluster_name = _text(context, "cluster", file=source, field=f"contexts[{current}].context")
    user_name = _text(context, "user", file=source, field=f"contexts[{current}].context")
    if not cluster_name:
        raise KubeconfigError(
            f"cluster was not specified for context {current!r}", file=source, field=f"contexts[{current}].context"
        )
    if cluster_name not in clusters:
        raise KubeconfigError(
            f"cluster {cluster_name!r} was not found for context {current!r}",
            file=source,
            field=f"contexts[{current}].context.cluster",
        )
    if not user_name:
        raise KubeconfigError(
            f"user was not specified for context {current!r}",
            file=source,
            field=f"contexts[{current}].context.user",
            hint="name an entry of `users` (it may be empty: `- name: apiserver`)",
        )
    if user_name not in users:
        raise KubeconfigError(
            f"user {user_name!r} was not found for context {current!r}",
            file=source,
            field=f"contexts[{current}].context.user",
        )
    cluster = clusters[cluster_name]
    user = users.get(user_name, {})
    cfield = f"clusters[{cluster_name}].cluster"
    ufield = f"users[{user_name}].user"

    server = _text(cluster, "server", file=source, field=cfield)
    if not server:
        raise KubeconfigError(f"no server found for cluster {cluster_name!r}", file=source, field=f"{cfield}.server")
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise KubeconfigError(
            f"invalid server URL {server!r}",
            file=source,
            field=f"{cfield}.server",
            hint="use a full URL such as https://audit.example.com:9443/audit",
        )
    config = WebhookClientConfig(
        server=server,
        source=source,
        cluster=cluster_name,
        user=user_name,
        certificate_authority=_path(cluster, "certificate-authority", base, file=source, field=cfield),
        certificate_authority_data=_data(cluster, "certificate-authority-data", file=source, field=cfield),
        insecure_skip_tls_verify=_flag(cluster, "insecure-skip-tls-verify", file=source, field=cfield),
        tls_server_name=_text(cluster, "tls-server-name", file=source, field=cfield),
        client_certificate=_path(user, "client-certificate", base, file=source, field=ufield),
        client_certificate_data=_data(user, "client-certificate-data", file=source, field=ufield),
        client_key=_path(user, "client-key", base, file=source, field=ufield),
        client_key_data=_data(user, "client-key-data", file=source, field=ufield),
        token=_text(user, "token", file=source, field=ufield),
        token_file=_path(user, "tokenFile", base, file=source, field=ufield),
    )
    _validate(config, cfield, ufield)
    return config


def _validate(config: WebhookClientConfig, cfield: str, ufield: str) -> None:
    source = config.source
    if config.certificate_authority and config.certificate_authority_data:
        raise KubeconfigError(
            "certificate-authority-data and certificate-authority are both specified",
            file=source,
            field=cfield,
            hint="keep one of them",
        )
    if config.has_ca and config.insecure_skip_tls_verify:
        raise KubeconfigError(
            "specifying a root certificates file with the insecure flag is not allowed",
            file=source,
            field=f"{cfield}.insecure-skip-tls-verify",
            hint="remove insecure-skip-tls-verify, the CA already makes TLS verifiable",
        )
    if config.client_certificate and config.client_certificate_data:
        raise KubeconfigError(
            "client-certificate-data and client-certificate are both specified", file=source, field=ufield
        )
    if config.client_key and config.client_key_data:
        raise KubeconfigError("client-key-data and client-key are both specified", file=source, field=ufield)
    has_key = bool(config.client_key or config.client_key_data)
    if config.has_client_certificate and not has_key:
        raise KubeconfigError(
            "client-key-data or client-key must be specified to use the client certificate",
            file=source,
            field=ufield,
        )
    if has_key and not config.has_client_certificate:
        raise KubeconfigError(
            "client-certificate-data or client-certificate must be specified with the client key",
            file=source,
            field=ufield,
        )


def load_kubeconfig(path: str | os.PathLike[str]) -> WebhookClientConfig:
    """Read a webhook kubeconfig (YAML or JSON); relative file paths resolve against its directory."""
    file = Path(path)
    source = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KubeconfigError("file does not exist", file=source, hint="pass --audit-webhook-config-file") from None
    except IsADirectoryError:
        raise KubeconfigError("is a directory, not a kubeconfig file", file=source) from None
    except (OSError, UnicodeDecodeError) as error:
        raise KubeconfigError(f"cannot be read: {error}", file=source) from None
    try:
        document = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark is not None else ""
        raise KubeconfigError(f"not valid YAML: {getattr(error, 'problem', error)}", file=source, field=line) from None
    return parse_kubeconfig(document, source=source, base=file.resolve().parent)
