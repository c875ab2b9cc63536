"""Where the bus is and how its streams are named: `--bus nats://host:4222[,host2:4222]`."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from kubetrail.errors import KubetrailError

DEFAULT_STREAM = "KUBETRAIL_AUDIT"
DEFAULT_SUBJECT_PREFIX = "kubetrail.audit"
DEFAULT_ALERTS_STREAM = "KUBETRAIL_ALERTS"
DEFAULT_ALERTS_PREFIX = "kubetrail.alerts"
DEFAULT_CONSUMER = "kubetrail-workers"
DEFAULT_MEMBERS_BUCKET = "KUBETRAIL_WORKERS"
DEFAULT_PARTITIONS = 8
MAX_PARTITIONS = 256
DEFAULT_HEALTH_LISTEN = "127.0.0.1:0"
"""A worker's health port: a free loopback port, printed at start (several workers can share a host; pods pass
0.0.0.0:8081)."""
# Identities that did not authenticate share one partition, so rules about them (keyed by address) see them all.
UNAUTHENTICATED = frozenset({"", "system:anonymous"})
CLUSTER_HEADER = "Kubetrail-Cluster"
MSG_ID_HEADER = "Nats-Msg-Id"


class BusError(KubetrailError):
    """The bus cannot be used as configured (bad URL, unreachable servers, stream mismatch)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class BusConfig:
    """The NATS servers and the JetStream names kubetrail uses on them."""

    servers: tuple[str, ...]
    replicas: int = 1
    stream: str = DEFAULT_STREAM
    subject_prefix: str = DEFAULT_SUBJECT_PREFIX
    alerts_stream: str = DEFAULT_ALERTS_STREAM
    alerts_prefix: str = DEFAULT_ALERTS_PREFIX
    consumer: str = DEFAULT_CONSUMER
    duplicate_window_seconds: float = 600.0
    ack_wait_seconds: float = 30.0
    partitions: int = DEFAULT_PARTITIONS
    members_bucket: str = DEFAULT_MEMBERS_BUCKET

    def subject(self, cluster: str, partition: int = 0) -> str:
        """The subject of one cluster's events of one partition (`.` in a cluster name would split the token, so
        it becomes `_`): `kubetrail.audit.<cluster>.<partition>`."""
        return f"{self.subject_prefix}.{subject_token(cluster)}.{partition}"

    def partition_subjects(self, partition: int) -> str:
        """Every cluster's events of one partition."""
        return f"{self.subject_prefix}.*.{partition}"

    def partition_consumer(self, partition: int) -> str:
        """The durable consumer of one partition, bound by whichever worker owns the partition."""
        return f"{self.consumer}-p{partition}"

    def alerts_subject(self, cluster: str) -> str:
        return f"{self.alerts_prefix}.{subject_token(cluster)}"


def subject_token(cluster: str) -> str:
    """A cluster name as one NATS subject token."""
    return cluster.replace(".", "_") or "default"


def parse_bus_url(text: str, *, replicas: int = 1, partitions: int = DEFAULT_PARTITIONS) -> BusConfig:
    """`nats://a:4222,nats://b:4222` or `nats://a:4222,b:4222` → BusConfig (scheme nats or tls)."""
    servers: list[str] = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        url = part if "://" in part else f"nats://{part}"
        parsed = urlsplit(url)
        if parsed.scheme not in ("nats", "tls") or not parsed.hostname:
            raise BusError(f"--bus: {part!r} is not a NATS URL", hint="e.g. nats://127.0.0.1:4222,nats://10.0.0.2:4222")
        servers.append(url)
    if not servers:
        raise BusError("--bus: no NATS server given", hint="e.g. nats://127.0.0.1:4222")
    if replicas < 1 or replicas > 5:
        raise BusError(f"--bus-replicas {replicas}: JetStream streams have 1 to 5 replicas")
    if partitions < 1 or partitions > MAX_PARTITIONS:
        raise BusError(f"--bus-partitions {partitions}: between 1 and {MAX_PARTITIONS}")
    return BusConfig(servers=tuple(servers), replicas=replicas, partitions=partitions)


def partition_of(username: str, partitions: int) -> int:
    """The partition of an event by who made it: one identity's events always land in one partition, so one
    worker holds that identity's stateful-rule state. Unauthenticated requests share a partition."""
    key = "" if username in UNAUTHENTICATED else username
    return zlib.crc32(key.encode()) % partitions


def batch_message_id(cluster: str, keys: Iterable[tuple[str, str]]) -> str:
    """JetStream's de-duplication id for one batch: a digest of cluster + every (auditID, stage) in it.

    A retried POST of the same events yields the same id, so JetStream stores the batch once.
    """
    digest = hashlib.sha256(cluster.encode())
    for audit_id, stage in keys:
        digest.update(b"\0" + audit_id.encode() + b"/" + stage.encode())
    return digest.hexdigest()[:40]
