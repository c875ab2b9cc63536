"""AKS, from the storage-account archive: diagnostic settings' `kube-audit` / `kube-audit-admin` blobs, read live
with azure-storage-blob.

A diagnostic setting archiving to a storage account writes each category to its container
(`insights-logs-kube-audit`, `insights-logs-kube-audit-admin`), one append blob per cluster and hour:
`resourceId=/SUBSCRIPTIONS/…/MANAGEDCLUSTERS/<NAME>/y=2024/m=05/d=01/h=10/m=00/PT1H.json`, one JSON record per
line, appended to while the hour lasts (and a while after, as late records arrive). Every `poll-interval` the
containers are listed (under the cluster's `resource-id` when it is configured: only the days not yet finished);
each blob with bytes beyond its checkpoint is read from there, only up to its last whole line (a final line
without a newline counts once it is a whole JSON document), decoded by the intake's AKS reader
(`intake.aks.decode_aks`, as for an exported file), stored, and only after the WAL fsync is the blob's new
offset checkpointed. Blobs of hours finished a day ago and read to their end are folded into one
`done-before` mark, so the checkpoint stays small.

Credentials: a connection string from the environment variable named by `connection-string-env` (default
AZURE_STORAGE_CONNECTION_STRING, when it is set), else `account-url` with azure-identity's
DefaultAzureCredential (environment, workload identity, managed identity, the az CLI's login). Never logged.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import time
from dataclasses import dataclass
from typing import Any

import msgspec

from kubetrail.extras import require
from kubetrail.intake.aks import decode_aks
from kubetrail.pipeline import Pipeline
from kubetrail.sources.base import Backoff, PollingSource, deliver
from kubetrail.sources.checkpoint import SourceCheckpoints
from kubetrail.sources.config import Entry, SourceConfigError

log = logging.getLogger(__name__)

TYPE = "aks-storage"
CONTAINERS = ("insights-logs-kube-audit", "insights-logs-kube-audit-admin")
DEFAULT_CONNECTION_ENV = "AZURE_STORAGE_CONNECTION_STRING"
READ_BYTES = 8 << 20
"""Bytes read from a blob at a time; a line longer than this is read whole, up to MAX_LINE_BYTES."""
MAX_LINE_BYTES = 64 << 20
SETTLED_AFTER = dt.timedelta(days=1)
"""A blob whose hour ended this long ago and that is read to its end gets no more records."""
THROTTLE_CODES = frozenset({"ServerBusy", "OperationTimedOut", "TooManyRequests"})
_HOUR = re.compile(r"/y=(\d{4})/m=(\d\d)/d=(\d\d)/h=(\d\d)/")
_KEYS = (
    "account-url",
    "connection-string-env",
    "containers",
    "resource-id",
    "poll-interval",
    "from",
)


@dataclass(frozen=True)
class AksStorageSpec:
    """A configured `aks-storage` source."""

    name: str
    cluster: str | None
    account: str
    """The account URL, or `connection-string:ENV` (what the checkpoint is keyed by; no secret in it)."""
    account_url: str | None = None
    connection_env: str | None = None
    containers: tuple[str, ...] = CONTAINERS
    resource_id: str | None = None
    poll_interval: float = 30.0
    from_start: bool = True
    type: str = TYPE

    def open(self, pipeline: Pipeline, checkpoints: SourceCheckpoints) -> AksStorageSource:
        require("azure", f"the {TYPE} source", "azure.storage.blob")
        return AksStorageSource(self, pipeline, checkpoints, service=blob_service(self))


def parse_spec(entry: Entry) -> AksStorageSpec:
    """An `aks-storage` entry: `account-url` (DefaultAzureCredential) or a connection string's variable."""
    entry.check_keys(_KEYS)
    url = entry.text("account-url")
    if url is not None and not url.startswith(("https://", "http://")):
        raise entry.error("account-url", f"{url!r} is not an http(s) URL", hint="https://ACCOUNT.blob.core.windows.net")
    variable = entry.text("connection-string-env")
    if variable is None and url is None and os.environ.get(DEFAULT_CONNECTION_ENV):
        variable = DEFAULT_CONNECTION_ENV
    if variable is None and url is None:
        raise entry.error(
            "account-url",
            "needs `account-url` (or `connection-string-env`)",
            hint="e.g. account-url: https://myaccount.blob.core.windows.net",
        )
    containers = entry.values.get("containers", list(CONTAINERS))
    if isinstance(containers, str):
        containers = [containers]
    if not isinstance(containers, list) or not containers or not all(isinstance(c, str) and c for c in containers):
        raise entry.error("containers", "must be a list of container names", hint=", ".join(CONTAINERS))
    resource_id = entry.text("resource-id")
    if resource_id is not None and "/managedclusters/" not in resource_id.lower():
        raise entry.error("resource-id", "is not an AKS cluster's resource id", hint="az aks show --query id -o tsv")
    named = entry.text("cluster")
    if named is None and resource_id is not None:
        named = resource_id.rstrip("/").rsplit("/", 1)[-1].lower()
    cluster = entry.cluster(named) if named else None
    account = url or f"connection-string:{variable}"
    return AksStorageSpec(
        name=entry.text("name") or f"{TYPE}:{cluster or _account_name(account)}",
        cluster=cluster,
        account=account,
        account_url=url,
        connection_env=variable if url is None else None,
        containers=tuple(containers),
        resource_id=resource_id,
        poll_interval=entry.seconds("poll-interval", 30.0),
        from_start=entry.choice("from", ("start", "end")) == "start",
    )


def _account_name(account: str) -> str:
    host = account.split("//", 1)[-1].split("/", 1)[0]
    return host.split(".", 1)[0] or account


def blob_service(spec: AksStorageSpec) -> Any:
    """A BlobServiceClient from the connection string's variable, or the account URL and DefaultAzureCredential."""
    from azure.storage.blob import BlobServiceClient

    if spec.connection_env is not None:
        text = os.environ.get(spec.connection_env, "")
        if not text:
            raise SourceConfigError(
                f"the environment variable {spec.connection_env} is not set",
                field=f"{spec.name}.connection-string-env",
                hint="az storage account show-connection-string … (docs/managed-clusters.md)",
            )
        try:
            return BlobServiceClient.from_connection_string(text)
        except ValueError:
            raise SourceConfigError(
                f"{spec.connection_env} does not hold a storage connection string",
                field=f"{spec.name}.connection-string-env",
            ) from None
    require("azure", f"the {TYPE} source with account-url", "azure.identity")
    from azure.identity import DefaultAzureCredential

    return BlobServiceClient(str(spec.account_url), credential=DefaultAzureCredential())


class Position(msgspec.Struct):
    """An account's checkpoint: each blob's offset (bytes delivered, always at a line's end), by
    `container/name`, and the hour before which every blob is finished (`2024-05-01T10`)."""

    account: str
    blobs: dict[str, int] = {}
    done_before: str = ""


def hour_of(name: str) -> str | None:
    """`…/y=2024/m=05/d=01/h=10/m=00/PT1H.json` → `2024-05-01T10`."""
    found = _HOUR.search(name)
    return f"{found[1]}-{found[2]}-{found[3]}T{found[4]}" if found else None


def _hour_start(hour: str) -> dt.datetime:
    return dt.datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=dt.UTC)


def whole_lines(data: bytes, at_end: bool) -> int:
    """How many bytes of `data` are whole records: up to the last newline, or all of it when it reaches the
    blob's end and its last line is a whole JSON document (Azure may not end the last record with a newline)."""
    cut = data.rfind(b"\n") + 1
    tail = data[cut:]
    if at_end and tail.strip():
        try:
            msgspec.json.decode(tail)
        except (msgspec.DecodeError, RecursionError):
            return cut
        return len(data)
    return cut


@dataclass
class _Blob:
    container: str
    name: str
    size: int
    modified: float

    @property
    def key(self) -> str:
        return f"{self.container}/{self.name}"


class AksStorageSource(PollingSource):
    """Follows the hourly audit blobs of an account into the pipeline, checkpointing each after the WAL fsync."""

    def __init__(
        self,
        spec: AksStorageSpec,
        pipeline: Pipeline,
        checkpoints: SourceCheckpoints,
        *,
        service: Any,
        backoff: Backoff | None = None,
        clock: Any = None,
    ) -> None:
        super().__init__(spec.name, poll_interval=spec.poll_interval, backoff=backoff)
        self.spec = spec
        self.pipeline = pipeline
        self.checkpoints = checkpoints
        self.service = service
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._key = f"{spec.account} {','.join(spec.containers)} {spec.resource_id or spec.cluster or ''}"
        saved = checkpoints.load(TYPE, self._key, Position)
        self.position = saved or Position(spec.account)
        self._fresh = saved is None

    # ----- errors ---------------------------------------------------------------------------------------------

    @staticmethod
    def _code(error: Exception) -> str:
        return str(getattr(error, "error_code", "") or "")

    def is_throttle(self, error: Exception) -> bool:
        return self._code(error) in THROTTLE_CODES or getattr(error, "status_code", 0) in (429, 503)

    def describe(self, error: Exception) -> str:
        code = self._code(error)
        message = str(getattr(error, "reason", "") or "") if code else str(error).splitlines()[0] if str(error) else ""
        return f"{_account_name(self.spec.account)}: {code or type(error).__name__}: {message}".rstrip(": ")

    # ----- one round ------------------------------------------------------------------------------------------

    def poll_once(self) -> int:
        blobs = self._list()
        if self._fresh:
            self._fresh = False
            if not self.spec.from_start:
                for blob in blobs:
                    self.position.blobs[blob.key] = blob.size
                self._save()
                return 0
        delivered = 0
        pending: list[float] = []
        for blob in blobs:
            if self.stopping:
                break
            offset = self.position.blobs.get(blob.key, 0)
            if blob.size < offset:
                log.warning("source %s: %s shrank below its checkpoint; reading it again", self.name, blob.key)
                offset = 0
            if blob.size > offset:
                delivered += self._read(blob, offset)
            if blob.size > self.position.blobs.get(blob.key, 0):
                pending.append(blob.modified)
        self._settle(blobs)
        self.stats.lag_seconds = max(0.0, time.time() - min(pending)) if pending else 0.0
        return delivered

    def _prefixes(self) -> list[str]:
        """What to list: the resource id's days since the done-before mark, else everything under `resourceId=`."""
        if self.spec.resource_id is None:
            return ["resourceId="]
        base = f"resourceId={self.spec.resource_id.rstrip('/').upper()}/"
        if not self.position.done_before:
            return [base]
        day = _hour_start(self.position.done_before).date()
        today = self.clock().date()
        prefixes = []
        while day <= today:
            prefixes.append(f"{base}y={day:%Y}/m={day:%m}/d={day:%d}/")
            day += dt.timedelta(days=1)
        return prefixes

    def _list(self) -> list[_Blob]:
        from azure.core.exceptions import ResourceNotFoundError

        marker = f"/MANAGEDCLUSTERS/{self.spec.cluster.upper()}/" if self.spec.cluster else None
        blobs: list[_Blob] = []
        missing = 0
        for container in self.spec.containers:
            client = self.service.get_container_client(container)
            try:
                for prefix in self._prefixes():
                    for item in client.list_blobs(name_starts_with=prefix):
                        name = str(item.name)
                        hour = hour_of(name)
                        if hour is None or (self.position.done_before and hour < self.position.done_before):
                            continue
                        if marker is not None and self.spec.resource_id is None and marker not in name.upper():
                            continue
                        modified = item.last_modified.timestamp() if item.last_modified else time.time()
                        blobs.append(_Blob(container, name, int(item.size or 0), modified))
            except ResourceNotFoundError:
                missing += 1
        if missing == len(self.spec.containers):
            raise SourceConfigError(
                f"none of the containers {', '.join(self.spec.containers)} exists (yet)",
                hint="the diagnostic setting creates them with its first records",
            )
        return sorted(blobs, key=lambda blob: (hour_of(blob.name) or "", blob.key))

    def _read(self, blob: _Blob, offset: int) -> int:
        """Read a blob from `offset` to its end (as of the listing), whole lines only, each chunk stored then
        checkpointed."""
        client = self.service.get_container_client(blob.container)
        source = f"{blob.container}/{blob.name}"
        delivered = 0
        want = READ_BYTES
        while offset < blob.size and not self.stopping:
            length = min(want, blob.size - offset)
            data = client.download_blob(blob.name, offset=offset, length=length, max_concurrency=1).readall()
            at_end = offset + len(data) >= blob.size
            cut = whole_lines(data, at_end)
            if cut == 0:
                if at_end:
                    break  # a record still being appended: next round
                if want >= MAX_LINE_BYTES:
                    raise ValueError(f"{source}: a line longer than {MAX_LINE_BYTES} bytes at byte {offset}")
                want *= 2
                continue
            want = READ_BYTES
            for batch in decode_aks([data[:cut]], source):
                if batch.events or batch.rejected:
                    deliver(self.pipeline, batch, self.spec.cluster, source, self.stats)
                    delivered += len(batch.events) + len(batch.rejected)
                else:
                    self.stats.skipped += sum(batch.skipped.values())
            offset += cut
            self.position.blobs[blob.key] = offset
            self._save()
        return delivered

    def _settle(self, blobs: list[_Blob]) -> None:
        """Fold finished hours into `done_before`: every blob of them read to its end, the hour a day old."""
        limit = self.clock() - SETTLED_AFTER
        hours: dict[str, bool] = {}
        for blob in blobs:
            hour = hour_of(blob.name)
            if hour is not None:
                finished = self.position.blobs.get(blob.key, 0) >= blob.size
                hours[hour] = hours.get(hour, True) and finished
        mark = self.position.done_before
        for hour in sorted(hours):
            if not hours[hour] or _hour_start(hour) + dt.timedelta(hours=1) > limit:
                break
            mark = (_hour_start(hour) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H")
        if mark != self.position.done_before:
            self.position.done_before = mark
            for key in [key for key in self.position.blobs if (hour_of(key) or "") < mark]:
                del self.position.blobs[key]
            self._save()

    def _save(self) -> None:
        self.checkpoints.save(TYPE, self._key, self.position)
