"""The GKE pull source against Google's Pub/Sub emulator (started by these tests on loopback), with the real
google-cloud-pubsub client: messages become the events the file reader makes of the same entries, they are
acknowledged only after the WAL fsync, and what could not be stored is handed back and stored once later."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kubetrail.intake import Batch, read_bytes
from kubetrail.pipeline import Outcome, Pipeline
from kubetrail.sources.base import Backoff
from kubetrail.sources.checkpoint import SourceCheckpoints
from kubetrail.sources.config import Entry
from kubetrail.sources.gke import TYPE, GkePubSubSource, parse_spec
from kubetrail.store import Store
from tests.intake.shapes import log_entry
from tests.serve.helpers import audit_event, audit_ids
from tests.sources.servers import emulator_environment, make_topic, publish_entries, pubsub_emulator

pytest.importorskip("google.cloud.pubsub_v1", reason="the gcp extra (google-cloud-pubsub) is not installed")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pubsub_emulator(tmp_path_factory.mktemp("emulator")) as host, emulator_environment(host):
        yield host


def entries(count: int, prefix: str) -> list[dict[str, Any]]:
    made = []
    for number in range(count):
        event = audit_event(number, prefix=prefix)
        if number % 4 == 3:
            event["objectRef"] = {**event["objectRef"], "subresource": "exec"}
            event["verb"] = "create"
        made.append(log_entry(event))
    return made


def source(subscription: str, pipeline: Pipeline, folder: Path, **settings: Any) -> GkePubSubSource:
    values = {"type": TYPE, "subscription": subscription, "wait": "1s", "max-messages": 50, **settings}
    spec = parse_spec(Entry(values, "test.yaml", "sources[0]", "default"))
    opened = spec.open(pipeline, SourceCheckpoints(folder / "checkpoints"))
    opened.backoff = Backoff(base=0.01, cap=0.01)
    return opened


def drain(pulled: GkePubSubSource, rounds: int = 50) -> int:
    """Pull until a round brings nothing; the messages read."""
    total = 0
    for _ in range(rounds):
        count = pulled.poll_once()
        if not count:
            return total
        total += count
    return total


def test_pulled_messages_are_the_events_a_file_gives_and_are_acknowledged(emulator: str, tmp_path: Path) -> None:
    publisher, topic, subscription = make_topic()
    made = entries(120, "pull")
    publish_entries(publisher, topic, made)
    store = Store.open(tmp_path / "store")
    try:
        pulled = source(subscription, Pipeline(store), tmp_path)
        assert drain(pulled) == 120 and pulled.acknowledged == 120
        assert pulled.stats.events == 150 and pulled.stats.lag_seconds >= 0  # a granted exec is two events
        assert pulled.poll_once() == 0  # acknowledged: nothing comes back
        rows = store.query_connection().execute("select cluster, event from events order by audit_id, stage").fetchall()
    finally:
        store.close()
    from_file = [
        (batch.cluster, msgspec.json.decode(msgspec.json.encode(event)))
        for batch in read_bytes(json.dumps(made).encode(), source="f", format="gke")
        for event in batch.events
    ]
    key = lambda pair: (pair[1]["auditID"], pair[1]["stage"])  # noqa: E731
    assert [(cluster, json.loads(raw)) for cluster, raw in rows] == sorted(from_file, key=key)


class FailingOnce(Pipeline):
    """A pipeline whose first delivery fails as a full disk would (nothing stored, an error raised)."""

    failures = 1

    def accept(self, batch: Batch, cluster: str | None = None, *, source: str = "") -> Outcome:
        if self.failures:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        return super().accept(batch, cluster, source=source)


def test_what_could_not_be_stored_is_not_acknowledged_and_comes_back_once(emulator: str, tmp_path: Path) -> None:
    publisher, topic, subscription = make_topic()
    made = entries(30, "fail")
    publish_entries(publisher, topic, made)
    store = Store.open(tmp_path / "store")
    try:
        pulled = source(subscription, FailingOnce(store), tmp_path, cluster="gke-named")
        assert pulled.step() > 0  # the failure, backed off
        assert pulled.stats.errors == 1 and pulled.acknowledged == 0
        assert "No space left" in pulled.stats.last_error
        drain(pulled)
        assert pulled.acknowledged == 30 and (pulled.stats.events, pulled.stats.duplicates) == (37, 0)
        clusters = {row[0] for row in store.query_connection().execute("select cluster from events").fetchall()}
    finally:
        store.close()
    assert clusters == {"gke-named"}
    assert len(audit_ids(tmp_path / "store")) == 37


def test_a_missing_subscription_is_a_failure_the_source_reports(emulator: str, tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    try:
        pulled = source("projects/demo-project/subscriptions/nothing-here", Pipeline(store), tmp_path)
        for _ in range(5):
            pulled.step()
        problem = pulled.health()
        assert problem is not None and "NotFound" in problem and "nothing-here" in problem
    finally:
        store.close()


class Crash(BaseException):
    """The process dying between the WAL fsync and the acknowledgement."""


def test_a_crash_after_the_fsync_before_the_ack_redelivers_and_dedup_keeps_one_copy(
    emulator: str, tmp_path: Path
) -> None:
    publisher, topic, subscription = make_topic()
    made = entries(40, "crash")
    publish_entries(publisher, topic, made)
    store = Store.open(tmp_path / "store")
    try:
        crashed = source(subscription, Pipeline(store), tmp_path, **{"max-messages": 40})

        def die(**_: Any) -> None:
            raise Crash

        crashed.client.acknowledge = die
        with pytest.raises(Crash):
            crashed.poll_once()
        assert crashed.stats.events == 50 and crashed.acknowledged == 0
        restarted = source(subscription, Pipeline(store), tmp_path)
        redelivered, deadline = 0, time.monotonic() + 30
        while redelivered < 40 and time.monotonic() < deadline:  # once the ack deadline (10 s) has passed
            redelivered += restarted.poll_once() or bool(time.sleep(0.2))
        assert redelivered == 40 and restarted.acknowledged == 40
        assert (restarted.stats.events, restarted.stats.duplicates) == (0, 50)
        assert restarted.poll_once() == 0
    finally:
        store.close()
    assert len(audit_ids(tmp_path / "store")) == 50
