"""GKE, pulled: a Cloud Logging sink's Pub/Sub subscription read by serve with google-cloud-pubsub.

The sink (filter `logName:"cloudaudit.googleapis.com" AND resource.type="k8s_cluster"`) publishes each
LogEntry as one message. Each round pulls up to `max-messages` (synchronous Pull, waiting at most `wait` for
messages), decodes every message's entry with the GKE intake (`intake.gke.decode_messages`, the conversion
`kubetrail ingest` uses for exports), hands the events to the pipeline and, only after the WAL fsync,
acknowledges the messages. Pub/Sub keeps what is not acknowledged and redelivers it after the ack deadline, so
Pub/Sub itself is the checkpoint: a crash before the acknowledgement redelivers, and the store's
(cluster, auditID, stage) dedup keeps one copy. When storing fails the messages are handed back at once
(ack deadline 0) and the round is retried with backoff.

RESOURCE_EXHAUSTED (quota) counts as throttling; the SDK's own retries are off for Pull so that there is one
backoff. Credentials are Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, Workload Identity,
the metadata server); the SDK honours PUBSUB_EMULATOR_HOST. Nothing of them is logged.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from kubetrail.extras import require
from kubetrail.intake.gke import decode_messages
from kubetrail.pipeline import Pipeline
from kubetrail.sources.base import Backoff, PollingSource, deliver
from kubetrail.sources.checkpoint import SourceCheckpoints
from kubetrail.sources.config import Entry, SourceConfigError

log = logging.getLogger(__name__)

TYPE = "gke-pubsub"
_SUBSCRIPTION = re.compile(r"^projects/[^/]+/subscriptions/[^/]+$")
THROTTLE_NAMES = frozenset({"ResourceExhausted", "TooManyRequests"})
_KEYS = ("subscription", "project", "max-messages", "poll-interval", "wait", "endpoint")


@dataclass(frozen=True)
class GkePubSubSpec:
    """A configured `gke-pubsub` source."""

    name: str
    cluster: str | None
    subscription: str
    max_messages: int = 1000
    poll_interval: float = 1.0
    wait: float = 5.0
    endpoint: str | None = None
    type: str = TYPE

    def open(self, pipeline: Pipeline, checkpoints: SourceCheckpoints) -> GkePubSubSource:
        require("gcp", f"the {TYPE} source", "google.cloud.pubsub_v1")
        return GkePubSubSource(self, pipeline, client=subscriber_client(self))


def parse_spec(entry: Entry) -> GkePubSubSpec:
    """A `gke-pubsub` entry: `subscription` as `projects/P/subscriptions/S`, or `S` with `project`."""
    entry.check_keys(_KEYS)
    subscription = entry.text("subscription")
    if subscription is None:
        raise entry.error("subscription", "needs `subscription`", hint="e.g. projects/my-project/subscriptions/audit")
    if "/" not in subscription:
        project = entry.text("project")
        if project is None:
            raise entry.error("project", "a short subscription name needs `project`", hint="or give the full path")
        subscription = f"projects/{project}/subscriptions/{subscription}"
    if not _SUBSCRIPTION.match(subscription):
        raise entry.error("subscription", f"{subscription!r} is not projects/PROJECT/subscriptions/NAME")
    count = entry.values.get("max-messages", 1000)
    if isinstance(count, bool) or not str(count).isdigit() or not 1 <= int(str(count)) <= 1000:
        raise entry.error("max-messages", f"{count!r} is not a whole number from 1 to 1000")
    cluster = entry.cluster() if entry.text("cluster") else None
    return GkePubSubSpec(
        name=entry.text("name") or f"{TYPE}:{cluster or _short(subscription)}",
        cluster=cluster,
        subscription=subscription,
        max_messages=int(str(count)),
        poll_interval=entry.seconds("poll-interval", 1.0),
        wait=entry.seconds("wait", 5.0),
        endpoint=entry.text("endpoint"),
    )


def _short(subscription: str) -> str:
    """`projects/p/subscriptions/s` → `p/s`."""
    parts = subscription.split("/")
    return f"{parts[1]}/{parts[3]}"


def subscriber_client(spec: GkePubSubSpec) -> Any:
    """A Pub/Sub subscriber from Application Default Credentials (or the emulator named by PUBSUB_EMULATOR_HOST)."""
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import pubsub_v1

    options = {"api_endpoint": spec.endpoint} if spec.endpoint else None
    try:
        return pubsub_v1.SubscriberClient(client_options=options)
    except DefaultCredentialsError:
        raise SourceConfigError(
            "no Google Cloud credentials",
            field=f"{spec.name}.subscription",
            hint="set GOOGLE_APPLICATION_CREDENTIALS, or run with Workload Identity (docs/managed-clusters.md)",
        ) from None


class GkePubSubSource(PollingSource):
    """Pulls one subscription into the pipeline, acknowledging each pull after the WAL fsync."""

    def __init__(self, spec: GkePubSubSpec, pipeline: Pipeline, *, client: Any, backoff: Backoff | None = None) -> None:
        super().__init__(spec.name, poll_interval=spec.poll_interval, backoff=backoff)
        self.spec = spec
        self.pipeline = pipeline
        self.client = client
        self.acknowledged = 0
        """Messages acknowledged since start (tests and debugging)."""

    def is_throttle(self, error: Exception) -> bool:
        return type(error).__name__ in THROTTLE_NAMES

    def describe(self, error: Exception) -> str:
        message = getattr(error, "message", None) or str(error)
        return f"{self.spec.subscription}: {type(error).__name__}: {message}".rstrip(": ")

    def poll_once(self) -> int:
        from google.api_core import exceptions

        request = {"subscription": self.spec.subscription, "max_messages": self.spec.max_messages}
        try:
            response = self.client.pull(request=request, retry=None, timeout=self.spec.wait)
        except exceptions.DeadlineExceeded:
            return 0  # nothing arrived while we waited
        received = list(response.received_messages)
        if not received:
            self.stats.lag_seconds = 0.0
            return 0
        ack_ids = [item.ack_id for item in received]
        source = f"pubsub {self.spec.subscription}"
        batches = decode_messages([(item.message.message_id, bytes(item.message.data)) for item in received], source)
        try:
            for batch in batches:
                if batch.events or batch.rejected:
                    deliver(self.pipeline, batch, self.spec.cluster, source, self.stats)
                else:
                    self.stats.skipped += sum(batch.skipped.values())
        except BaseException:
            self._hand_back(ack_ids)
            raise
        self.client.acknowledge(request={"subscription": self.spec.subscription, "ack_ids": ack_ids})
        self.acknowledged += len(ack_ids)
        published = [item.message.publish_time.timestamp() for item in received if item.message.publish_time]
        self.stats.lag_seconds = max(0.0, time.time() - max(published)) if published else 0.0
        return len(received)

    def _hand_back(self, ack_ids: list[str]) -> None:
        """Make the messages deliverable again at once (best effort: the ack deadline does it anyway)."""
        request = {"subscription": self.spec.subscription, "ack_ids": ack_ids, "ack_deadline_seconds": 0}
        try:
            self.client.modify_ack_deadline(request=request)
        except Exception as error:
            log.debug("source %s: could not hand messages back: %s", self.name, type(error).__name__)
