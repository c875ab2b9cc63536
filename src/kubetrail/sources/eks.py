"""EKS, pulled: an EKS cluster's audit log read live from CloudWatch Logs with boto3.

The control plane writes its audit events to the log group `/aws/eks/<cluster>/cluster`, one stream per API
server instance (`kube-apiserver-audit-<id>`); instances are replaced, so new streams appear. Every
`discover-interval` the streams are listed (DescribeLogStreams with the name prefix); each is read forward
with GetLogEvents from where it stood (`startFromHead` with the stream's `nextForwardToken`; CloudWatch returns
the token it was given once a stream's end is reached). Each page is decoded by the intake's EKS reader
(`intake.eks.add_message`: audit events kept byte for byte, other lines skipped), handed to the pipeline, and
only after its WAL fsync is the stream's new token checkpointed. A stream that stays idle is polled less often
(doubling up to `idle-max`); one deleted by retention is forgotten.

Forward tokens expire after 24 hours, so after a longer stop (or when CloudWatch refuses a token) a stream is
resumed by time: from the last delivered event's timestamp, skipping the events already delivered at that
millisecond (the store's dedup absorbs any the count misses).

Throttling (ThrottlingException: CloudWatch Logs allows each account ~25 GetLogEvents and DescribeLogStreams
calls a second per region) is waited out with exponential backoff and full jitter across the whole source;
botocore's own retries are off so that there is one backoff, counted in `kubetrail_source_throttled_total`.
Credentials come from boto3's default chain (environment, shared profile, web identity / IRSA, EKS Pod
Identity, instance profile) and are never logged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import msgspec

from kubetrail.extras import require
from kubetrail.intake import Batch
from kubetrail.intake.eks import add_message, cluster_of
from kubetrail.pipeline import Pipeline
from kubetrail.sources.base import Backoff, PollingSource, deliver
from kubetrail.sources.checkpoint import SourceCheckpoints
from kubetrail.sources.config import Entry, SourceConfigError

log = logging.getLogger(__name__)

TYPE = "eks-cloudwatch"
STREAM_PREFIX = "kube-apiserver-audit-"
TOKEN_MAX_AGE = 23 * 3600.0
"""Forward tokens expire after 24 hours; older ones are not even tried."""
PAGES_PER_ROUND = 20
"""Pages read from one stream before the others get their turn."""
THROTTLE_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded", "RequestThrottled"}
)
_KEYS = (
    "log-group",
    "region",
    "profile",
    "endpoint-url",
    "poll-interval",
    "discover-interval",
    "idle-max",
    "stream-prefix",
    "from",
)


@dataclass(frozen=True)
class EksCloudWatchSpec:
    """A configured `eks-cloudwatch` source."""

    name: str
    cluster: str
    log_group: str
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    poll_interval: float = 5.0
    discover_interval: float = 60.0
    idle_max: float = 60.0
    stream_prefix: str = STREAM_PREFIX
    from_start: bool = True
    type: str = TYPE

    def open(self, pipeline: Pipeline, checkpoints: SourceCheckpoints) -> EksCloudWatchSource:
        require("aws", f"the {TYPE} source")
        return EksCloudWatchSource(self, pipeline, checkpoints, client=logs_client(self))


def parse_spec(entry: Entry) -> EksCloudWatchSpec:
    """An `eks-cloudwatch` entry: `log-group` or `cluster` (each implies the other for EKS's naming)."""
    entry.check_keys(_KEYS)
    group = entry.text("log-group")
    named = entry.text("cluster")
    if group is None and named is None:
        raise entry.error("log-group", "needs `log-group` (or `cluster`)", hint="e.g. log-group: /aws/eks/prod/cluster")
    cluster = entry.cluster(cluster_of(group) if group else None)
    log_group = group or f"/aws/eks/{cluster}/cluster"
    endpoint = entry.text("endpoint-url")
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise entry.error("endpoint-url", f"{endpoint!r} is not an http(s) URL")
    return EksCloudWatchSpec(
        name=entry.text("name") or f"{TYPE}:{cluster}",
        cluster=cluster,
        log_group=log_group,
        region=entry.text("region"),
        profile=entry.text("profile"),
        endpoint_url=endpoint,
        poll_interval=entry.seconds("poll-interval", 5.0),
        discover_interval=entry.seconds("discover-interval", 60.0),
        idle_max=entry.seconds("idle-max", 60.0),
        stream_prefix=entry.text("stream-prefix", STREAM_PREFIX) or STREAM_PREFIX,
        from_start=entry.choice("from", ("start", "end")) == "start",
    )


def logs_client(spec: EksCloudWatchSpec) -> Any:
    """A CloudWatch Logs client from boto3's default credential chain, without botocore's own retries."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, NoRegionError, ProfileNotFound

    try:
        session = boto3.session.Session(profile_name=spec.profile, region_name=spec.region)
        return session.client(
            "logs",
            endpoint_url=spec.endpoint_url,
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60),
        )
    except NoRegionError:
        raise SourceConfigError(
            "no AWS region", field=f"{spec.name}.region", hint="set `region:` or AWS_REGION (or the profile's region)"
        ) from None
    except (ProfileNotFound, BotoCoreError) as error:
        raise SourceConfigError(str(error), field=f"{spec.name}.profile") from None


class StreamPosition(msgspec.Struct, omit_defaults=True):
    """How far one stream was delivered: the forward token after the last page stored (when it was received,
    and the `startTime` it was read under, sent again with it), and the last event's timestamp with how many
    events at that millisecond were delivered."""

    token: str = ""
    received: float = 0.0
    last_timestamp: int = 0
    at_last: int = 0
    events: int = 0
    since: int = 0


class Position(msgspec.Struct):
    """A log group's checkpoint: every stream's position."""

    log_group: str
    streams: dict[str, StreamPosition] = {}


class EksCloudWatchSource(PollingSource):
    """Follows every audit stream of one log group into the pipeline, checkpointing each after the WAL fsync."""

    def __init__(
        self,
        spec: EksCloudWatchSpec,
        pipeline: Pipeline,
        checkpoints: SourceCheckpoints,
        *,
        client: Any,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(spec.name, poll_interval=spec.poll_interval, backoff=backoff)
        self.spec = spec
        self.pipeline = pipeline
        self.checkpoints = checkpoints
        self.client = client
        saved = checkpoints.load(TYPE, spec.log_group, Position)
        self.position = saved or Position(spec.log_group)
        self._fresh = saved is None
        self._next_discovery = 0.0
        self._idle: dict[str, int] = {}
        self._skip: dict[str, int] = {}
        self._lags: dict[str, float] = {}

    # ----- errors ---------------------------------------------------------------------------------------------

    @staticmethod
    def _code(error: Exception) -> str:
        response = getattr(error, "response", None)
        return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""

    def is_throttle(self, error: Exception) -> bool:
        return self._code(error) in THROTTLE_CODES

    def describe(self, error: Exception) -> str:
        code = self._code(error)
        if code:
            message = getattr(error, "response", {}).get("Error", {}).get("Message", "")
            return f"{self.spec.log_group}: {code}: {message}".rstrip(": ")
        return f"{self.spec.log_group}: {type(error).__name__}: {error}"

    # ----- one round ------------------------------------------------------------------------------------------

    def poll_once(self) -> int:
        now = time.monotonic()
        if now >= self._next_discovery:
            self._discover()
            self._next_discovery = now + self.spec.discover_interval
        delivered = 0
        for name in sorted(self.position.streams):
            if self.stopping:
                break
            if self._skip.get(name, 0):
                self._skip[name] -= 1
            else:
                delivered += self._read_stream(name)
        self.stats.lag_seconds = max(self._lags.values(), default=0.0)
        return delivered

    def _discover(self) -> None:
        """Add the streams not known yet: from their start, or (first run with `from: end`) from now."""
        request: dict[str, Any] = {"logGroupName": self.spec.log_group, "logStreamNamePrefix": self.spec.stream_prefix}
        names: list[str] = []
        while True:
            page = self.client.describe_log_streams(**request)
            names.extend(str(stream["logStreamName"]) for stream in page.get("logStreams", ()))
            token = page.get("nextToken")
            if not token or token == request.get("nextToken"):
                break
            request["nextToken"] = token
        new = [name for name in names if name not in self.position.streams]
        start = int(time.time() * 1000) if self._fresh and not self.spec.from_start else 0
        for name in new:
            self.position.streams[name] = StreamPosition(last_timestamp=start)
            log.info("source %s: following stream %s", self.name, name)
        if new or self._fresh:
            self._save()
        self._fresh = False

    def _save(self) -> None:
        self.checkpoints.save(TYPE, self.spec.log_group, self.position)

    def _read_stream(self, name: str) -> int:
        """Read one stream forward, page by page, each stored before its position is saved."""
        delivered = 0
        for _ in range(PAGES_PER_ROUND):
            if self.stopping:
                break
            position = self.position.streams.get(name)
            if position is None:
                break
            page, by_token = self._get_page(name, position)
            if page is None:
                break
            count, at_end = self._deliver_page(name, position, page, by_token)
            delivered += count
            if at_end:
                break
        self._schedule(name, delivered)
        return delivered

    def _get_page(self, name: str, position: StreamPosition) -> tuple[dict[str, Any] | None, bool]:
        request: dict[str, Any] = {"logGroupName": self.spec.log_group, "logStreamName": name, "startFromHead": True}
        by_token = bool(position.token) and time.time() - position.received < TOKEN_MAX_AGE
        since = position.since if by_token else position.last_timestamp
        if by_token:
            request["nextToken"] = position.token
        if since:
            request["startTime"] = since
        try:
            return self.client.get_log_events(**request), by_token
        except Exception as error:
            code = self._code(error)
            if code == "ResourceNotFoundException" and self._stream_gone(name):
                return None, by_token
            if code == "InvalidParameterException" and by_token:
                log.info("source %s: %s: the saved token was refused; resuming by time", self.name, name)
                self.position.streams[name] = msgspec.structs.replace(position, token="")
                return self._get_page(name, self.position.streams[name])
            raise

    def _stream_gone(self, name: str) -> bool:
        """True (and the stream forgotten) when the group still exists but the stream does not (retention)."""
        self.client.describe_log_streams(logGroupName=self.spec.log_group, limit=1)
        log.info("source %s: stream %s is gone (deleted by retention?); forgetting it", self.name, name)
        self.position.streams.pop(name, None)
        self._lags.pop(name, None)
        self._save()
        return True

    def _deliver_page(
        self, name: str, position: StreamPosition, page: dict[str, Any], by_token: bool
    ) -> tuple[int, bool]:
        """Store one page, then checkpoint; returns (events read, whether the stream's end was reached)."""
        events = page.get("events", ())
        token = str(page.get("nextForwardToken", ""))
        skip = 0 if by_token else position.at_last
        last, at_last = position.last_timestamp, position.at_last if by_token else 0
        source = f"{self.spec.log_group}:{name}"
        batch = Batch()
        read = 0
        for event in events:
            stamp = int(event.get("timestamp", 0))
            if skip and stamp == position.last_timestamp:
                skip -= 1
                at_last += 1
                continue
            message = event.get("message")
            if isinstance(message, str):
                add_message(batch, message.encode(), source, None)
            else:
                batch.reject(source, None, "a log event without a `message` string")
            read += 1
            if stamp == last:
                at_last += 1
            else:
                last, at_last = stamp, 1
        if batch.events or batch.rejected:
            deliver(self.pipeline, batch, self.spec.cluster, source, self.stats)
        else:
            self.stats.skipped += sum(batch.skipped.values())
        at_end = by_token and token == position.token
        since = position.since if by_token else position.last_timestamp
        self.position.streams[name] = StreamPosition(token, time.time(), last, at_last, position.events + read, since)
        if token != position.token or read:
            self._save()
        ingested = [int(event.get("ingestionTime", 0)) for event in events if event.get("ingestionTime")]
        self._lags[name] = 0.0 if at_end or not ingested else max(0.0, time.time() - max(ingested) / 1000)
        return read, at_end

    def _schedule(self, name: str, delivered: int) -> None:
        """Read an active stream every round; one idle for n rounds skips the next 2**(n-1) - 1 (at most
        `idle-max` worth of rounds), so dead instances' streams cost few calls."""
        idle = 0 if delivered else self._idle.get(name, 0) + 1
        self._idle[name] = idle
        most = int(self.spec.idle_max / self.spec.poll_interval)
        self._skip[name] = 0 if idle < 2 else max(0, min(most, 2 ** (idle - 1)) - 1)
