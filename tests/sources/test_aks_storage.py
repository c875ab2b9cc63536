"""The AKS archive source against Azurite (Microsoft's Azure Storage emulator, started by these tests on
loopback), with the real azure-storage-blob client: hourly append blobs as diagnostic settings write them, the
current hour's blob growing (records cut mid-line until the rest arrives), new hours followed, and restarts that
lose and repeat nothing."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetrail.pipeline import Pipeline
from kubetrail.sources.aks_storage import TYPE, AksStorageSource, Position, parse_spec, whole_lines
from kubetrail.sources.base import Backoff
from kubetrail.sources.checkpoint import SourceCheckpoints
from kubetrail.sources.config import Entry
from kubetrail.store import Store
from tests.serve.helpers import audit_event, audit_ids
from tests.sources.servers import aks_blob_name, aks_lines, azurite

pytest.importorskip("azure.storage.blob", reason="the azure extra (azure-storage-blob) is not installed")

AUDIT = "insights-logs-kube-audit"
ADMIN = "insights-logs-kube-audit-admin"
VARIABLE = "KUBETRAIL_TEST_STORAGE"


@pytest.fixture(scope="module")
def connection(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with azurite(tmp_path_factory.mktemp("azurite")) as text:
        yield text


@pytest.fixture
def account(connection: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh account view: the containers emptied, the connection string in the variable the source reads."""
    from azure.storage.blob import BlobServiceClient

    monkeypatch.setenv(VARIABLE, connection)
    service = BlobServiceClient.from_connection_string(connection)
    for name in (AUDIT, ADMIN):
        container = service.get_container_client(name)
        if container.exists():
            for blob in container.list_blobs():
                container.delete_blob(blob.name)
        else:
            container.create_container()
    return service


class Archive:
    """Writes the archive's blobs as Azure Monitor does: append blobs, one record per line."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def append(self, container: str, name: str, data: bytes) -> None:
        blob = self.service.get_container_client(container).get_blob_client(name)
        if not blob.exists():
            blob.create_append_blob()
        if data:
            blob.append_block(data)


def events(prefix: str, count: int, start: int = 0) -> list[dict[str, Any]]:
    return [audit_event(number, prefix=prefix) for number in range(start, start + count)]


def ids(made: list[dict[str, Any]]) -> list[str]:
    return [str(event["auditID"]) for event in made]


def hour(offset_hours: int = 0) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=offset_hours)).strftime("%Y-%m-%dT%H")


class Harness:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.store = Store.open(folder / "store")
        self.checkpoints = SourceCheckpoints(folder / "store" / "checkpoints")

    def source(self, **settings: Any) -> AksStorageSource:
        values = {"type": TYPE, "connection-string-env": VARIABLE, "poll-interval": "50ms", **settings}
        spec = parse_spec(Entry(values, "test.yaml", "sources[0]", "default"))
        opened = spec.open(Pipeline(self.store), self.checkpoints)
        opened.backoff = Backoff(base=0.01, cap=0.01)
        return opened

    def stored(self) -> list[str]:
        self.store.close()
        found = audit_ids(self.folder / "store")
        self.store = Store.open(self.folder / "store")
        return found

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    made = Harness(tmp_path)
    yield made
    made.close()


def test_hourly_blobs_a_growing_current_hour_and_a_restart(account: Any, harness: Harness) -> None:
    archive = Archive(account)
    old, now = aks_blob_name("prod-aks", hour(-50)), aks_blob_name("prod-aks", hour())
    first, second = events("old", 40), events("cur", 25)
    archive.append(AUDIT, old, aks_lines(first, "prod-aks"))
    cut = aks_lines(events("cut", 1), "prod-aks")
    archive.append(AUDIT, now, aks_lines(second, "prod-aks") + cut[:100])  # a record cut mid-line
    archive.append(ADMIN, now, aks_lines(events("adm", 5), "prod-aks", category="kube-audit-admin"))
    other = [{"category": "kube-apiserver", "resourceId": "/X/MANAGEDCLUSTERS/PROD-AKS", "properties": {"log": "I0"}}]
    archive.append(AUDIT, now, b"")
    archive.append(AUDIT, now, b"")  # appends of nothing change nothing

    source = harness.source()
    source.step()
    assert source.stats.events == 70 and source.stats.errors == 0
    assert source.stats.lag_seconds > 0  # the cut record is still waiting
    archive.append(AUDIT, now, cut[100:] + aks_lines(events("cur", 10, start=25), "prod-aks"))
    archive.append(AUDIT, now, "".join(json.dumps(item) + "\n" for item in other).encode())
    source.step()
    assert source.stats.events == 81 and source.stats.skipped == 1 and source.stats.lag_seconds == 0

    # the next hour's blob appears; a restart reads it and nothing twice
    following = aks_blob_name("prod-aks", hour(1))
    archive.append(AUDIT, following, aks_lines(events("next", 12), "prod-aks"))
    restarted = harness.source()
    restarted.step()
    assert (restarted.stats.events, restarted.stats.duplicates) == (12, 0)
    assert restarted.position.done_before == hour(-49)  # the old hour is settled and forgotten
    assert all("h=" + hour(-50)[-2:] not in key for key in restarted.position.blobs)
    # a last record without a newline, whole: read (Azure may not end the last line)
    archive.append(AUDIT, following, aks_lines(events("last", 1), "prod-aks").rstrip(b"\n"))
    restarted.step()
    assert restarted.stats.events == 13
    stored = harness.stored()
    expected = ids(first) + ids(second) + ids(events("adm", 5)) + ids(events("cut", 1))
    expected += ids(events("cur", 10, start=25)) + ids(events("next", 12)) + ids(events("last", 1))
    assert sorted(stored) == sorted(expected)


def test_from_end_skips_what_is_there_and_a_cluster_reads_only_its_blobs(account: Any, harness: Harness) -> None:
    archive = Archive(account)
    mine, theirs = aks_blob_name("blue", hour()), aks_blob_name("green", hour())
    archive.append(AUDIT, mine, aks_lines(events("before", 20), "blue"))
    archive.append(AUDIT, theirs, aks_lines(events("green", 7), "green"))
    source = harness.source(**{"from": "end", "cluster": "blue"})
    source.step()
    assert source.stats.events == 0
    archive.append(AUDIT, mine, aks_lines(events("after", 3), "blue"))
    archive.append(AUDIT, theirs, aks_lines(events("green", 2, start=7), "green"))
    source.step()
    assert source.stats.events == 3
    stored = harness.stored()
    assert sorted(stored) == sorted(ids(events("after", 3)))
    # a source without a cluster reads every cluster's blobs (its own checkpoint), each labelled from its records
    everyone = harness.source(name="everyone")
    everyone.step()
    assert (everyone.stats.events, everyone.stats.duplicates) == (29, 3)
    rows = harness.store.query_connection().execute("select cluster, count(*) from events group by 1").fetchall()
    assert dict(rows) == {"blue": 23, "green": 9}


def test_no_container_is_a_failure_named_in_health(
    connection: str, monkeypatch: pytest.MonkeyPatch, harness: Harness
) -> None:
    monkeypatch.setenv(VARIABLE, connection)
    source = harness.source(containers=["insights-logs-nothing"])
    for _ in range(5):
        source.step()
    problem = source.health()
    assert problem is not None and "insights-logs-nothing" in problem and "AccountKey" not in problem


@pytest.mark.parametrize(
    ("data", "at_end", "whole"),
    [
        (b'{"a":1}\n{"b":2}\n', True, 16),
        (b'{"a":1}\n{"b":', True, 8),
        (b'{"a":1}\n{"b":2}', True, 15),
        (b'{"a":1}\n{"b":2}', False, 8),
        (b'{"a":1', True, 0),
        (b"", True, 0),
    ],
)
def test_only_whole_records_are_read(data: bytes, at_end: bool, whole: int) -> None:
    assert whole_lines(data, at_end) == whole


def test_the_checkpoint_names_no_secret(account: Any, harness: Harness, connection: str) -> None:
    Archive(account).append(AUDIT, aks_blob_name("prod-aks", hour()), aks_lines(events("s", 2), "prod-aks"))
    harness.source().step()
    (saved,) = (harness.folder / "store" / "checkpoints").glob("source-aks-storage-*.json")
    text = saved.read_text()
    assert "AccountKey" not in text and connection.split("AccountKey=")[1].split(";")[0] not in text
    assert Position.__name__ and json.loads(text)["account"] == f"connection-string:{VARIABLE}"
