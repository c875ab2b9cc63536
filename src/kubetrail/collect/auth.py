"""Who may send events, and for which cluster: bearer tokens from a token file, and TLS client certificates.

Token file (one of two layouts; `#` starts a comment, so tokens cannot contain it)::

    # TOKEN,CLUSTER            a token that may only write to CLUSTER
    3f9c1d...,prod
    77aa02...,*                # `*` or no cluster: any cluster, the URL decides

    tokens:                    # or YAML
      - token: 3f9c1d...
        cluster: prod

Tokens are compared in constant time (SHA-256 digests, every entry checked) and never logged. A client
certificate counts when the TLS layer verified it against the client CA; its subject's CN (or else O) can
be mapped to a cluster (`CN=apiserver-prod: prod`, `O=team-b: staging`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubetrail.errors import KubetrailError
from kubetrail.store.store import CLUSTER_NAME

log = logging.getLogger(__name__)

ANY_CLUSTER = "*"
TLS_EXTENSION = "tls"
SUBJECT_KEY = "client_cert_subject"
_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SUBJECT_ATTRIBUTES = ("CN", "O")


def _checked(cluster: str, source: str, line: int | None) -> str:
    """A cluster name as every door takes it (`store.check_cluster`), or an AuthConfigError saying where."""
    if not CLUSTER_NAME.fullmatch(cluster):
        raise AuthConfigError(
            f"invalid cluster name {cluster!r}",
            file=source,
            line=line,
            hint="use letters, digits, '.', '_' or '-' (at most 128 characters, not starting with a symbol)",
        )
    return cluster


class AuthConfigError(KubetrailError):
    """A token file or certificate mapping that cannot be used; names the file, line or field (never a token)."""

    def __init__(
        self, message: str, *, file: str = "", line: int | None = None, field: str = "", hint: str = ""
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        self.hint = hint
        where = ": ".join(part for part in (file + (f":{line}" if line is not None else ""), field) if part)
        super().__init__(f"{where}: {message}" if where else message)


@dataclass(frozen=True)
class Identity:
    """An authenticated sender: how (`token` or `certificate`), a printable name, and its cluster (None: any)."""

    method: str
    name: str
    cluster: str | None


@dataclass(frozen=True, repr=False)
class _TokenEntry:
    digest: bytes
    cluster: str | None
    label: str


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True, repr=False)
class TokenTable:
    """Bearer tokens and the cluster each may write to; only digests are kept in memory."""

    entries: tuple[_TokenEntry, ...]
    source: str = ""

    def __repr__(self) -> str:
        return f"TokenTable({len(self.entries)} tokens from {self.source or '<memory>'})"

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[str, str | None]], source: str = "") -> TokenTable:
        """A table from (token, cluster) pairs; cluster None or `*` allows any cluster."""
        entries = tuple(
            _TokenEntry(
                _digest(token),
                None if cluster in (None, "", ANY_CLUSTER) else _checked(cluster, source, index + 1),
                f"{source}#{index + 1}",
            )
            for index, (token, cluster) in enumerate(pairs)
        )
        return cls(entries, source)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TokenTable:
        """Read a token file (`TOKEN,CLUSTER` lines or YAML `tokens:`); refuses an empty one."""
        name = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
            mode = os.stat(path).st_mode
        except (OSError, UnicodeDecodeError) as error:
            raise AuthConfigError(
                f"cannot read the token file: {error}", file=name, hint="check --token-file"
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("%s: the token file is readable by other users; chmod 600 it", name)
        pairs = _parse_yaml(text, name) if _looks_like_yaml(text) else _parse_lines(text, name)
        if not pairs:
            raise AuthConfigError("the token file has no tokens", file=name, hint="one `TOKEN,CLUSTER` per line")
        return cls.from_pairs(pairs, name)

    def match(self, token: str) -> _TokenEntry | None:
        """The entry for `token`: every entry is compared, in constant time, whatever matches first."""
        presented = _digest(token)
        found: _TokenEntry | None = None
        for entry in self.entries:
            if hmac.compare_digest(presented, entry.digest) and found is None:
                found = entry
        return found


def _looks_like_yaml(text: str) -> bool:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped.startswith("tokens:")
    return False


def _parse_lines(text: str, name: str) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    seen: set[bytes] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.split("#", 1)[0].strip()
        if not stripped:
            continue
        fields = [part.strip() for part in stripped.split(",")]
        if len(fields) > 2 or not fields[0]:
            raise AuthConfigError(
                "expected `TOKEN,CLUSTER` (or a token alone)", file=name, line=number, hint="one token per line"
            )
        token = fields[0]
        if any(char.isspace() for char in token):
            raise AuthConfigError("a token may not contain spaces", file=name, line=number)
        digest = _digest(token)
        if digest in seen:
            raise AuthConfigError("this token is listed twice", file=name, line=number, hint="keep one line per token")
        seen.add(digest)
        pairs.append((token, fields[1] if len(fields) == 2 else None))
    return pairs


def _parse_yaml(text: str, name: str) -> list[tuple[str, str | None]]:
    try:
        document = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise AuthConfigError(
            f"not valid YAML: {getattr(error, 'problem', error)}",
            file=name,
            line=mark.line + 1 if mark is not None else None,
        ) from None
    items = document.get("tokens") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise AuthConfigError("`tokens` must be a list", file=name, field="tokens", hint="- token: …\\n  cluster: …")
    pairs: list[tuple[str, str | None]] = []
    for index, item in enumerate(items):
        where = f"tokens[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("token"), str) or not item["token"].strip():
            raise AuthConfigError("each entry needs a `token` string", file=name, field=where)
        cluster = item.get("cluster")
        if cluster is not None and not isinstance(cluster, str):
            raise AuthConfigError("`cluster` must be a string", file=name, field=f"{where}.cluster")
        pairs.append((item["token"].strip(), cluster))
    return pairs


@dataclass(frozen=True)
class CertificateMap:
    """Client-certificate subjects (`CN=name` or `O=org`) mapped to cluster names."""

    by_attribute: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, mapping: Mapping[str, str], *, source: str = "client-cert-clusters") -> CertificateMap:
        table: dict[str, dict[str, str]] = {attribute: {} for attribute in _SUBJECT_ATTRIBUTES}
        for key, cluster in mapping.items():
            attribute, _, value = str(key).partition("=")
            attribute = attribute.strip().upper()
            if attribute not in table or not value.strip():
                raise AuthConfigError(
                    f"{key!r} is not a subject to match",
                    field=source,
                    hint="use `CN=<common name>` or `O=<organization>`",
                )
            table[attribute][value.strip()] = _checked(str(cluster), source, None)
        return cls(table)

    def cluster_for(self, subject: Mapping[str, Sequence[str]]) -> str | None:
        """The cluster of the first mapped CN, else of the first mapped O; None when nothing is mapped."""
        for attribute in _SUBJECT_ATTRIBUTES:
            names = self.by_attribute.get(attribute, {})
            for value in subject.get(attribute, ()):
                if value in names:
                    return names[value]
        return None


def subject_of(peer_certificate: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """`ssl.SSLSocket.getpeercert()`'s subject as {"CN": […], "O": […], …}."""
    short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU"}
    subject: dict[str, list[str]] = {}
    for rdn in (peer_certificate or {}).get("subject", ()):
        for key, value in rdn:
            subject.setdefault(short.get(key, key), []).append(value)
    return subject


class Authenticator:
    """Decides who sent a request (ASGI scope): a valid bearer token or a verified client certificate."""

    def __init__(self, tokens: TokenTable | None = None, certificates: CertificateMap | None = None) -> None:
        self.tokens = tokens
        self.certificates = certificates

    @property
    def required(self) -> bool:
        """True when any method is configured: then an unauthenticated request is refused."""
        return self.tokens is not None or self.certificates is not None

    def authenticate(self, scope: Mapping[str, Any]) -> Identity | None:
        """The sender's identity, or None; a token is tried first, then the TLS client certificate."""
        if self.tokens is not None:
            token = _bearer_token(scope)
            if token is not None:
                entry = self.tokens.match(token)
                if entry is not None:
                    return Identity("token", entry.label, entry.cluster)
        if self.certificates is not None:
            tls = scope.get("extensions", {}).get(TLS_EXTENSION) or {}
            subject = tls.get(SUBJECT_KEY)
            if subject:
                common = ",".join(subject.get("CN", [])) or tls.get("client_cert_name") or "?"
                return Identity("certificate", f"CN={common}", self.certificates.cluster_for(subject))
        return None


def _bearer_token(scope: Mapping[str, Any]) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            text: str = value.decode("latin-1")
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None
