"""`kubetrail serve`'s configuration: a YAML file whose keys are the command's flag names, overridden by flags.

Example (`kubetrail serve --config serve.yaml`; relative paths are relative to the file)::

    store: /var/lib/kubetrail
    listen: 0.0.0.0:8443
    cluster: prod                    # for /k8s-audit and --tail without a cluster
    tls-cert: pki/server.pem
    tls-key: pki/server-key.pem
    client-ca: pki/apiserver-ca.pem  # require a client certificate signed by this CA (or a token)
    client-cert-clusters:            # optional: the cluster of a certificate's CN (or O)
      CN=kube-apiserver-prod: prod
    token-file: tokens.csv           # TOKEN,CLUSTER lines
    tail:
      - /var/log/kubernetes/audit/audit.log            # cluster: the `cluster` above
      - {path: /var/log/other/audit.log, cluster: staging}
    retention-days: 90
    max-bytes: 200GiB
    max-body-size: 12MiB
    max-event-size: 256KiB
    rules: [builtin, extra-rules/]   # detection rules (default: the built-in set); [] turns detection off
    outputs: outputs.yaml            # where alerts go besides the store (docs/outputs.md)
    detection: {max_keys: 100000}    # keys each stateful rule keeps at most (or `max-keys:` / --max-keys)
    redact: true                     # replace secret values in events before they are stored
    sources:                         # live cloud sources (docs/managed-clusters.md)
      - {type: eks-cloudwatch, cluster: prod, log-group: /aws/eks/prod/cluster, region: eu-west-1}
    firehose: {access-key-file: firehose-keys}   # POST /firehose/<cluster>: `KEY[,CLUSTER]` lines
    pubsub-push:                     # POST /pubsub/<cluster>: Pub/Sub push, its OIDC token verified
      audience: https://kubetrail.example.com/pubsub
      service-account: kubetrail-push@my-project.iam.gserviceaccount.com
      # jwks: google-certs.json      # default: Google's published keys (a URL or a JWKS file)
"""

from __future__ import annotations

import ipaddress
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from kubetrail.collect.limits import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_EVENT_BYTES
from kubetrail.errors import SettingError
from kubetrail.store import StoreError, check_cluster

if TYPE_CHECKING:
    from kubetrail.sources.config import SourceSpec

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DEFAULT_LISTEN = "127.0.0.1:8080"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}

KEYS = (
    "store",
    "bus",
    "bus-replicas",
    "bus-partitions",
    "listen",
    "cluster",
    "tls-cert",
    "tls-key",
    "client-ca",
    "client-cert-clusters",
    "token-file",
    "ui",
    "ui-port",
    "ui-token-file",
    "ui-users-file",
    "ui-insecure",
    "tail",
    "tail-from",
    "poll-interval",
    "retention-days",
    "max-bytes",
    "max-body-size",
    "max-event-size",
    "log-level",
    "rules",
    "outputs",
    "detection",
    "max-keys",
    "redact",
    "sources",
    "eks-log-group",
    "firehose",
    "firehose-access-key-file",
    "gke-subscription",
    "aks-storage-account",
    "aks-eventhub",
    "pubsub-push",
    "pubsub-audience",
    "pubsub-jwks",
    "pubsub-service-account",
)
_DETECTION_KEYS = ("max_keys",)
_FIREHOSE_KEYS = ("access-key-file",)
_PUBSUB_KEYS = ("audience", "jwks", "service-account")
GOOGLE_JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs"
"""Where Google publishes the keys it signs OIDC tokens with (sources.oidc checks tokens against them)."""


class ServeConfigError(SettingError):
    """A `serve` setting that cannot be used: names the file and key (or flag) and how to fix it."""


@dataclass(frozen=True)
class TailSpec:
    """A log file to follow, and the cluster its events belong to."""

    path: Path
    cluster: str


@dataclass(frozen=True)
class PubSubPushSettings:
    """`POST /pubsub[/<cluster>]`: the token audiences accepted, where the keys are, the accounts allowed."""

    audiences: tuple[str, ...]
    jwks: str = GOOGLE_JWKS_URL
    service_accounts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServeConfig:
    """Everything `kubetrail serve` needs; built by `build_config` from a file and flags."""

    store: Path
    host: str = "127.0.0.1"
    port: int = 8080
    cluster: str = "default"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    client_cert_clusters: Mapping[str, str] = field(default_factory=dict)
    token_file: Path | None = None
    bus: str | None = None
    bus_replicas: int = 1
    bus_partitions: int = 8
    ui: bool = True
    ui_port: int | None = None
    ui_token_file: Path | None = None
    ui_users_file: Path | None = None
    ui_insecure: bool = False
    tails: tuple[TailSpec, ...] = ()
    tail_from_start: bool = True
    poll_interval: float = 0.25
    retention_days: int | None = None
    max_bytes: int | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    log_level: str = "info"
    rules: tuple[str, ...] | None = None
    outputs: Path | None = None
    max_keys: int | None = None  # None: the stateful detector's default
    redact: bool = False
    sources: tuple[SourceSpec, ...] = ()
    firehose_key_file: Path | None = None
    pubsub_push: PubSubPushSettings | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @property
    def authenticated(self) -> bool:
        return self.token_file is not None or self.client_ca is not None


def parse_size(text: str | int, *, field: str = "", file: str = "") -> int:
    """`500M`, `10GiB`, `1.5G`, `4096` → bytes (K, M, G… are powers of 1024)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise ServeConfigError(f"{text!r} is not a size", file=file, field=field, hint="examples: 500M, 10GiB, 1048576")
    return int(float(match[1]) * 1024 ** _UNITS[match[2].lower()])


def parse_listen(text: str, *, field: str = "listen", file: str = "") -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:8080` for IPv6) → (host, port); the host must be given."""
    host, separator, port_text = str(text).rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not separator or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ServeConfigError(
            f"{text!r} is not HOST:PORT",
            file=file,
            field=field,
            hint="e.g. 127.0.0.1:8080 (this machine only) or 0.0.0.0:8443 (every interface, use TLS)",
        )
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_config_file(path: str | Path) -> dict[str, Any]:
    """The YAML mapping of a config file, with unknown keys refused and paths made absolute."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ServeConfigError(f"cannot read the config file: {error}", file=name, hint="check --config") from None
    try:
        document = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ServeConfigError(f"not valid YAML{line}: {getattr(error, 'problem', error)}", file=name) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ServeConfigError("the config must be a mapping of option: value", file=name)
    unknown = [str(key) for key in document if key not in KEYS]
    if unknown:
        raise ServeConfigError(
            f"unknown key {unknown[0]!r}", file=name, field=unknown[0], hint=f"known keys: {', '.join(KEYS)}"
        )
    base = Path(path).resolve().parent
    values: dict[str, Any] = dict(document)
    for key in ("ui-token-file", "ui-users-file"):
        if values.get(key) is not None:
            values[key] = str(base / str(values[key]))
    for key in ("store", "tls-cert", "tls-key", "client-ca", "token-file", "outputs", "firehose-access-key-file"):
        if values.get(key) is not None:
            values[key] = str(base / str(values[key]))
    firehose = values.get("firehose")
    if isinstance(firehose, dict) and firehose.get("access-key-file") is not None:
        values["firehose"] = {**firehose, "access-key-file": str(base / str(firehose["access-key-file"]))}
    if values.get("pubsub-jwks") is not None:
        values["pubsub-jwks"] = _file_or_url(values["pubsub-jwks"], base)
    push = values.get("pubsub-push")
    if isinstance(push, dict) and push.get("jwks") is not None:
        values["pubsub-push"] = {**push, "jwks": _file_or_url(push["jwks"], base)}
    if values.get("tail") is not None:
        values["tail"] = [_tail_entry(entry, base, name, index) for index, entry in enumerate(_as_list(values["tail"]))]
    if values.get("rules") is not None:
        values["rules"] = [rule if rule == "builtin" else str(base / str(rule)) for rule in _as_list(values["rules"])]
    values["__file__"] = name
    return values


def _file_or_url(value: object, base: Path) -> str:
    text = str(value)
    return text if text.startswith(("https://", "http://")) else str(base / text)


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _tail_entry(entry: object, base: Path, file: str, index: int) -> dict[str, str | None]:
    if isinstance(entry, str):
        return {"path": str(base / entry), "cluster": None}
    if isinstance(entry, dict) and isinstance(entry.get("path"), str) and set(entry) <= {"path", "cluster"}:
        cluster = entry.get("cluster")
        return {"path": str(base / entry["path"]), "cluster": None if cluster is None else str(cluster)}
    raise ServeConfigError(
        "each tail entry is a path, or {path: FILE, cluster: NAME}", file=file, field=f"tail[{index}]"
    )


def _path(value: object) -> Path | None:
    return None if value is None else Path(str(value))


def _cluster(value: object, *, file: str, field: str) -> str:
    try:
        return check_cluster(str(value))
    except StoreError as error:
        raise ServeConfigError(error.message, file=file, field=field, hint=error.hint) from None


def build_config(file_values: Mapping[str, Any], flags: Mapping[str, Any]) -> ServeConfig:
    """Flags (non-None values) override the file's values, which override the defaults; then validate."""
    values = {key: value for key, value in file_values.items() if value is not None}
    values.update({key: value for key, value in flags.items() if value is not None and value != ()})
    source = str(file_values.get("__file__", ""))

    def where(key: str) -> str:
        return source if key in file_values and key not in flags else ""

    bus = None if values.get("bus") is None else str(values["bus"])
    if values.get("store") is None:
        if bus is None:
            raise ServeConfigError(
                "no store directory", field="store", hint="pass --store DIR (or `store:` in --config)"
            )
        values["store"] = tempfile.mkdtemp(prefix="kubetrail-receiver-")  # only refused items are kept here
    if bus is not None and values.get("tail"):
        raise ServeConfigError(
            "a receiver on the bus does not tail files", field="tail", hint="run `serve --tail` next to the log instead"
        )
    host, port = parse_listen(values.get("listen", DEFAULT_LISTEN), file=where("listen"))
    cluster = _cluster(values.get("cluster", "default"), file=where("cluster"), field="cluster")
    tails: list[TailSpec] = []
    for index, entry in enumerate(values.get("tail", ())):
        spec = entry if isinstance(entry, dict) else {"path": entry, "cluster": None}
        tail_cluster = spec.get("cluster") or cluster
        tails.append(
            TailSpec(Path(str(spec["path"])), _cluster(tail_cluster, file=where("tail"), field=f"tail[{index}]"))
        )
    if len({spec.path.resolve() for spec in tails}) != len(tails):
        raise ServeConfigError("a file is tailed twice", field="tail", hint="list each file once")
    tail_from = str(values.get("tail-from", "start"))
    if tail_from not in ("start", "end"):
        raise ServeConfigError(f"{tail_from!r} is not start or end", file=where("tail-from"), field="tail-from")
    mapping = values.get("client-cert-clusters") or {}
    if not isinstance(mapping, dict):
        raise ServeConfigError("must be a mapping of CN=… or O=… to a cluster", field="client-cert-clusters")
    config = ServeConfig(
        store=Path(str(values["store"])),
        host=host,
        port=port,
        cluster=cluster,
        tls_cert=_path(values.get("tls-cert")),
        tls_key=_path(values.get("tls-key")),
        client_ca=_path(values.get("client-ca")),
        client_cert_clusters={str(key): str(value) for key, value in mapping.items()},
        token_file=_path(values.get("token-file")),
        ui=bool(values.get("ui", True)),
        ui_port=None if values.get("ui-port") is None else parse_listen(f"x:{values['ui-port']}", field="ui-port")[1],
        ui_token_file=_path(values.get("ui-token-file")),
        ui_users_file=_path(values.get("ui-users-file")),
        ui_insecure=bool(values.get("ui-insecure", False)),
        tails=tuple(tails),
        tail_from_start=tail_from == "start",
        poll_interval=_positive_float(values.get("poll-interval", 0.25), "poll-interval", where("poll-interval")),
        retention_days=_optional_int(values.get("retention-days"), "retention-days", where("retention-days")),
        max_bytes=None
        if values.get("max-bytes") is None
        else parse_size(values["max-bytes"], field="max-bytes", file=where("max-bytes")),
        max_body_bytes=parse_size(
            values.get("max-body-size", DEFAULT_MAX_BODY_BYTES), field="max-body-size", file=where("max-body-size")
        ),
        max_event_bytes=parse_size(
            values.get("max-event-size", DEFAULT_MAX_EVENT_BYTES), field="max-event-size", file=where("max-event-size")
        ),
        log_level=str(values.get("log-level", "info")).lower(),
        rules=None if values.get("rules") is None else tuple(str(rule) for rule in values["rules"]),
        outputs=_path(values.get("outputs")),
        max_keys=_max_keys(values, where),
        redact=bool(values.get("redact", False)),
        bus=bus,
        bus_replicas=int(values.get("bus-replicas", 1)),
        bus_partitions=int(values.get("bus-partitions", 8)),
        sources=_sources(values, where, cluster, bus),
        firehose_key_file=_firehose_key_file(values, where, bus),
        pubsub_push=_pubsub_push(values, where, bus),
    )
    _check(config, source)
    return config


def _sources(values: Mapping[str, Any], where: Callable[[str], str], cluster: str, bus: str | None) -> tuple[Any, ...]:
    """The `sources:` entries and `--eks-log-group` flags as typed specs (the sources package loads only here)."""
    entries = list(values.get("sources") or [])
    entries += [{"type": "eks-cloudwatch", "log-group": group} for group in values.get("eks-log-group") or ()]
    entries += [{"type": "gke-pubsub", "subscription": name} for name in values.get("gke-subscription") or ()]
    entries += [{"type": "aks-storage", "account-url": url} for url in values.get("aks-storage-account") or ()]
    for text in values.get("aks-eventhub") or ():
        namespace, _, hub = str(text).rpartition("/")
        entries.append({"type": "aks-eventhub", "namespace": namespace or None, "eventhub": hub})
    if not entries:
        return ()
    if bus is not None:
        raise ServeConfigError(
            "a receiver on the bus does not run cloud sources", field="sources", hint="run them in a serve with --store"
        )
    from kubetrail.sources.config import parse_sources

    return parse_sources(entries, file=where("sources"), default_cluster=cluster)


def _firehose_key_file(values: Mapping[str, Any], where: Callable[[str], str], bus: str | None) -> Path | None:
    """`--firehose-access-key-file`, or the file's `firehose: {access-key-file: …}`."""
    firehose = values.get("firehose") or {}
    if not isinstance(firehose, dict) or not set(firehose) <= set(_FIREHOSE_KEYS):
        raise ServeConfigError(
            "must be a mapping of Firehose settings",
            file=where("firehose"),
            field="firehose",
            hint="{access-key-file: FILE}",
        )
    path = _path(values.get("firehose-access-key-file") or firehose.get("access-key-file"))
    if path is not None and bus is not None:
        raise ServeConfigError(
            "a receiver on the bus does not take Firehose deliveries", field="firehose", hint="use a serve with --store"
        )
    return path


def _pubsub_push(values: Mapping[str, Any], where: Callable[[str], str], bus: str | None) -> PubSubPushSettings | None:
    """`--pubsub-audience` (with `--pubsub-jwks`, `--pubsub-service-account`), or the file's `pubsub-push:`."""
    push = values.get("pubsub-push") or {}
    if not isinstance(push, dict) or not set(push) <= set(_PUBSUB_KEYS):
        raise ServeConfigError(
            "must be a mapping of Pub/Sub push settings",
            file=where("pubsub-push"),
            field="pubsub-push",
            hint="{audience: URL, service-account: EMAIL, jwks: FILE|URL}",
        )

    def strings(flag: str, key: str) -> tuple[str, ...]:
        value = values.get(flag) or push.get(key) or ()
        items = [value] if isinstance(value, str) else list(value) if isinstance(value, list | tuple) else [value]
        if not all(isinstance(item, str) and item.strip() for item in items):
            raise ServeConfigError("must be a string or a list of strings", file=where("pubsub-push"), field=flag)
        return tuple(item.strip() for item in items)

    audiences = strings("pubsub-audience", "audience")
    accounts = strings("pubsub-service-account", "service-account")
    jwks = values.get("pubsub-jwks") or push.get("jwks")
    if not audiences:
        if accounts or jwks:
            raise ServeConfigError(
                "Pub/Sub push needs the audience its tokens are issued for",
                file=where("pubsub-push"),
                field="pubsub-push.audience",
                hint="the subscription's --push-auth-token-audience (default: its push endpoint URL)",
            )
        return None
    if bus is not None:
        raise ServeConfigError(
            "a receiver on the bus does not take Pub/Sub pushes", field="pubsub-push", hint="use a serve with --store"
        )
    return PubSubPushSettings(audiences, str(jwks) if jwks else GOOGLE_JWKS_URL, accounts)


def _max_keys(values: Mapping[str, Any], where: Callable[[str], str]) -> int | None:
    """`max-keys` (flag or file) wins over the file's `detection: {max_keys: N}`."""
    detection = values.get("detection") or {}
    if not isinstance(detection, dict) or not set(detection) <= set(_DETECTION_KEYS):
        raise ServeConfigError(
            "must be a mapping of detection settings",
            file=where("detection"),
            field="detection",
            hint="e.g. {max_keys: 100000}",
        )
    field, value = (
        ("max-keys", values["max-keys"])
        if values.get("max-keys") is not None
        else ("detection.max_keys", detection.get("max_keys"))
    )
    if value is None:
        return None
    if isinstance(value, bool) or not str(value).isdigit() or int(str(value)) < 1:
        raise ServeConfigError(
            f"{value!r} is not a whole number of keys (at least 1)", file=where(field.split(".")[0]), field=field
        )
    return int(str(value))


def _positive_float(value: object, field: str, file: str) -> float:
    try:
        number = float(str(value))
    except ValueError:
        number = -1.0
    if number <= 0:
        raise ServeConfigError(f"{value!r} is not a positive number of seconds", file=file, field=field)
    return number


def _optional_int(value: object, field: str, file: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not str(value).isdigit() or int(str(value)) < 1:
        raise ServeConfigError(f"{value!r} is not a whole number of days (at least 1)", file=file, field=field)
    return int(str(value))


def _check(config: ServeConfig, source: str) -> None:
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ServeConfigError("TLS needs both a certificate and its key", field="tls-cert/tls-key")
    if config.client_ca is not None and not config.tls:
        raise ServeConfigError("client certificates need TLS", field="client-ca", hint="also pass --tls-cert/--tls-key")
    if config.client_cert_clusters and config.client_ca is None:
        raise ServeConfigError("mapping certificates to clusters needs --client-ca", field="client-cert-clusters")
    for name, path in (
        ("tls-cert", config.tls_cert),
        ("tls-key", config.tls_key),
        ("client-ca", config.client_ca),
        ("token-file", config.token_file),
        ("outputs", config.outputs),
        ("firehose.access-key-file", config.firehose_key_file),
    ):
        if path is not None and not path.is_file():
            raise ServeConfigError(f"{path} is not a readable file", file=source, field=name)
    jwks = config.pubsub_push.jwks if config.pubsub_push is not None else None
    if jwks is not None and not jwks.startswith(("https://", "http://")) and not Path(jwks).is_file():
        raise ServeConfigError(f"{jwks} is not a readable file", file=source, field="pubsub-push.jwks")
    for name, path in (("ui-token-file", config.ui_token_file), ("ui-users-file", config.ui_users_file)):
        if path is not None and not path.is_file():
            raise ServeConfigError(f"{path} is not a readable file", file=source, field=name)
    ui_open = config.ui_token_file is None and config.ui_users_file is None
    if config.ui and ui_open and not config.ui_insecure and not is_loopback(config.host):
        raise ServeConfigError(
            f"the web UI would be readable by anyone who can reach {config.host}",
            field="ui",
            hint="pass --ui-token-file or --ui-users-file (or --no-ui; --ui-insecure to accept the risk)",
        )
    if config.max_event_bytes > config.max_body_bytes:
        raise ServeConfigError("max-event-size is larger than max-body-size", field="max-event-size")
    if config.log_level not in ("debug", "info", "warning", "error"):
        raise ServeConfigError(f"{config.log_level!r} is not debug, info, warning or error", field="log-level")
