"""The webhook receiver in-process (ASGI): what it accepts, refuses, stores, dead-letters and answers."""

from __future__ import annotations

import errno
import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubetrail.collect.auth import Authenticator, TokenTable
from kubetrail.collect.limits import Limits
from kubetrail.collect.metrics import Registry, TimedFileOps
from kubetrail.collect.receiver import Receiver
from kubetrail.store import FileOps, Store, StoreOptions
from tests.serve.helpers import AsgiClient, audit_event, count_by_cluster, event_list

JSON = {"Content-Type": "application/json"}


class SwitchableDisk(FileOps):
    """A WAL disk that answers ENOSPC while `full` is set, like a filesystem that filled up and was cleaned."""

    def __init__(self) -> None:
        self.full = False

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(fd, data)

    def fsync(self, fd: int) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        super().fsync(fd)


@pytest.fixture
def disk() -> SwitchableDisk:
    return SwitchableDisk()


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def store(tmp_path: Path, disk: SwitchableDisk, registry: Registry) -> Iterator[Store]:
    opened = Store.open(
        tmp_path / "store", StoreOptions(background_seal=False, file_ops=TimedFileOps(registry.fsync, disk))
    )
    yield opened
    opened.close()


def client_for(store: Store, registry: Registry | None = None, **options: object) -> AsgiClient:
    return AsgiClient(Receiver(store, metrics=registry, **options))  # type: ignore[arg-type]


def stored(store: Store) -> list[tuple[str, str, str]]:
    rows = store.query_connection().execute("select cluster, audit_id, stage from events order by audit_id").fetchall()
    return [(str(cluster), str(audit_id), str(stage)) for cluster, audit_id, stage in rows]


def dead_letters(store: Store) -> list[dict[str, object]]:
    store.dead_letters.flush()
    folder = store.layout.deadletter_dir
    lines = [line for path in sorted(folder.glob("*.ndjson")) for line in path.read_text().splitlines()]
    return [json.loads(line) for line in lines]


# ----- accepted layouts ----------------------------------------------------------------------------------------


def test_an_event_list_is_stored_under_the_cluster_of_the_path(store: Store, registry: Registry) -> None:
    events = [audit_event(number) for number in range(5)]
    response = client_for(store, registry).post("/audit/prod", content=event_list(events), headers=JSON)
    assert response.status_code == 200
    assert response.json() == {"cluster": "prod", "accepted": 5, "duplicates": 0, "rejected": 0}
    assert stored(store) == [("prod", event["auditID"], "ResponseComplete") for event in events]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(json.dumps(audit_event(1)).encode(), id="single-event"),
        pytest.param(json.dumps([audit_event(1), audit_event(2)]).encode(), id="array-of-events"),
        pytest.param(
            json.dumps(
                [audit_event(1), {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [audit_event(2)]}]
            ).encode(),
            id="array-with-an-event-list",
        ),
    ],
)
def test_an_event_and_arrays_of_events_or_lists_are_accepted(store: Store, body: bytes) -> None:
    response = client_for(store).post("/audit/c1", content=body, headers=JSON)
    assert response.status_code == 200
    expected = 1 if body.startswith(b"{") else 2
    assert response.json()["accepted"] == expected
    assert len(stored(store)) == expected


def test_v1beta1_events_are_accepted_and_stored_as_v1(store: Store) -> None:
    event = audit_event(7)
    event["apiVersion"] = "audit.k8s.io/v1beta1"
    response = client_for(store).post("/audit/c1", content=json.dumps(event).encode(), headers=JSON)
    assert response.status_code == 200
    (stored_json,) = store.query_connection().execute("select event from events").fetchone() or ("",)
    assert json.loads(stored_json)["apiVersion"] == "audit.k8s.io/v1"


def test_unknown_fields_of_an_event_are_kept_in_the_stored_json(store: Store) -> None:
    event = audit_event(3) | {"futureField": {"x": 1}}
    assert client_for(store).post("/audit/c1", content=event_list([event]), headers=JSON).status_code == 200
    (stored_json,) = store.query_connection().execute("select event from events").fetchone() or ("",)
    assert json.loads(stored_json)["futureField"] == {"x": 1}


def test_the_falco_path_uses_the_default_cluster(store: Store) -> None:
    client = client_for(store, default_cluster="edge")
    assert client.post("/k8s-audit", content=event_list([audit_event(1)]), headers=JSON).status_code == 200
    assert count_by_cluster(store.query_connection()) == {"edge": 1}


def test_a_gzip_body_is_accepted(store: Store) -> None:
    body = gzip.compress(event_list([audit_event(number) for number in range(3)]))
    response = client_for(store).post("/audit/c1", content=body, headers=JSON | {"Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.json()["accepted"] == 3


def test_a_retried_batch_is_stored_once(store: Store) -> None:
    client = client_for(store)
    body = event_list([audit_event(number) for number in range(4)])
    assert client.post("/audit/c1", content=body, headers=JSON).json()["accepted"] == 4
    again = client.post("/audit/c1", content=body, headers=JSON).json()
    assert again["accepted"] == 0 and again["duplicates"] == 4
    assert len(stored(store)) == 4


def test_an_empty_event_list_is_fine(store: Store) -> None:
    response = client_for(store).post("/audit/c1", content=event_list([]), headers=JSON)
    assert response.status_code == 200 and response.json()["accepted"] == 0


# ----- refusals ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_declared_json_gets_415(store: Store, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client_for(store).post("/audit/c1", content=event_list([audit_event(1)]), headers=headers)
    assert response.status_code == 415
    assert stored(store) == []


def test_json_with_a_charset_is_json(store: Store) -> None:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    assert client_for(store).post("/audit/c1", content=event_list([audit_event(1)]), headers=headers).status_code == 200


def test_an_unknown_content_encoding_gets_415(store: Store) -> None:
    headers = JSON | {"Content-Encoding": "br"}
    assert client_for(store).post("/audit/c1", content=b"{}", headers=headers).status_code == 415


def test_a_body_that_is_not_json_gets_400_with_one_line(store: Store) -> None:
    response = client_for(store).post("/audit/c1", content=b'{"kind": "EventList", "items": [', headers=JSON)
    assert response.status_code == 400
    assert response.text.count("\n") == 1 and "not JSON" in response.text
    assert stored(store) == [] and dead_letters(store) == []


def test_corrupt_gzip_gets_400(store: Store) -> None:
    body = gzip.compress(event_list([audit_event(1)]))[:-12]
    response = client_for(store).post("/audit/c1", content=body, headers=JSON | {"Content-Encoding": "gzip"})
    assert response.status_code == 400


def test_a_body_over_the_limit_gets_413_and_nothing_is_stored(store: Store) -> None:
    body = event_list([audit_event(number) for number in range(40)])
    client = client_for(store, limits=Limits(max_body_bytes=len(body) - 1))
    assert client.post("/audit/c1", content=body, headers=JSON).status_code == 413

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    assert client.post("/audit/c1", content=chunks(), headers=JSON).status_code == 413
    assert stored(store) == []


def test_a_gzip_bomb_gets_413(store: Store) -> None:
    bomb = gzip.compress(b"[" + b" " * (4 << 20) + b"]")
    assert len(bomb) < 64 << 10
    client = client_for(store, limits=Limits(max_body_bytes=1 << 20))
    response = client.post("/audit/c1", content=bomb, headers=JSON | {"Content-Encoding": "gzip"})
    assert response.status_code == 413


def test_an_event_over_the_per_event_limit_costs_only_itself(store: Store) -> None:
    """The apiserver truncates bodies above its own limit; an event that is still too large is refused alone,
    into the dead-letter file, and the rest of its batch is stored."""
    big = audit_event(2) | {"requestObject": {"data": "x" * 5000}}
    client = client_for(store, limits=Limits(max_event_bytes=4096))
    response = client.post("/audit/c1", content=event_list([audit_event(1), big]), headers=JSON)
    assert response.status_code == 200
    assert response.json()["rejected"] == 1
    assert stored(store) == [("c1", audit_event(1)["auditID"], "ResponseComplete")]
    (letter,) = dead_letters(store)
    assert "items[1]" in str(letter["reason"])
    assert "larger than the limit of 4096 bytes" in str(letter["reason"])


def test_invalid_items_go_to_the_dead_letter_file_and_the_rest_is_stored(store: Store, registry: Registry) -> None:
    missing_stage = audit_event(2)
    del missing_stage["stage"]
    bad_level = audit_event(3) | {"level": "Everything"}
    body = event_list([audit_event(1), missing_stage, bad_level, audit_event(4)])
    response = client_for(store, registry).post("/audit/c1", content=body, headers=JSON)
    assert response.status_code == 200
    assert response.json() == {"cluster": "c1", "accepted": 2, "duplicates": 0, "rejected": 2}
    assert [audit_id for _, audit_id, _ in stored(store)] == [audit_event(1)["auditID"], audit_event(4)["auditID"]]
    letters = dead_letters(store)
    assert len(letters) == 2
    assert "stage" in str(letters[0]["reason"]) and "items[1]" in str(letters[0]["reason"])
    assert "level" in str(letters[1]["reason"])
    assert json.loads(str(letters[0]["raw"]))["auditID"] == missing_stage["auditID"]
    assert all(letter["cluster"] == "c1" for letter in letters)
    text = registry.exposition().decode()
    assert 'kubetrail_receiver_events_rejected_total{cluster="c1"} 2' in text
    assert 'kubetrail_receiver_events_accepted_total{cluster="c1"} 2' in text
    assert 'kubetrail_receiver_events_received_total{cluster="c1"} 4' in text


@pytest.mark.parametrize(
    "body",
    [b"42", b'"text"', b"null", b'{"kind": "Pod", "apiVersion": "v1"}', b'{"kind": "EventList", "apiVersion": "v1"}'],
)
def test_json_that_holds_no_valid_event_gets_422_and_is_dead_lettered(store: Store, body: bytes) -> None:
    response = client_for(store).post("/audit/c1", content=body, headers=JSON)
    assert response.status_code == 422
    assert [letter["raw"] for letter in dead_letters(store)] == [body.decode()]
    assert stored(store) == []


@pytest.mark.parametrize("cluster", ["-bad", "a b", "x" * 200, "..", "a/b"])
def test_an_invalid_cluster_name_gets_400_or_404(store: Store, cluster: str) -> None:
    response = client_for(store).post(f"/audit/{cluster}", content=event_list([audit_event(1)]), headers=JSON)
    assert response.status_code in (400, 404)
    assert stored(store) == []


def test_wrong_methods_and_paths(store: Store) -> None:
    client = client_for(store)
    assert client.get("/audit/c1").status_code == 405
    assert client.post("/healthz").status_code == 405
    assert client.post("/audit", content=b"{}", headers=JSON).status_code == 404


# ----- authentication -------------------------------------------------------------------------------------------


def test_tokens_no_token_wrong_token_valid_token(store: Store) -> None:
    tokens = TokenTable.from_pairs([("s3cret-prod", "prod"), ("s3cret-any", None)])
    client = client_for(store, auth=Authenticator(tokens))
    body = event_list([audit_event(1)])
    assert client.post("/audit/prod", content=body, headers=JSON).status_code == 401
    wrong = JSON | {"Authorization": "Bearer s3cret-pro"}
    assert client.post("/audit/prod", content=body, headers=wrong).status_code == 401
    basic = JSON | {"Authorization": "Basic czNjcmV0LXByb2Q="}
    assert client.post("/audit/prod", content=body, headers=basic).status_code == 401
    assert stored(store) == []
    good = JSON | {"Authorization": "Bearer s3cret-prod"}
    assert client.post("/audit/prod", content=body, headers=good).status_code == 200
    assert stored(store) == [("prod", audit_event(1)["auditID"], "ResponseComplete")]


def test_a_token_bound_to_a_cluster_cannot_write_to_another(store: Store) -> None:
    tokens = TokenTable.from_pairs([("s3cret-prod", "prod"), ("s3cret-any", "*")])
    client = client_for(store, auth=Authenticator(tokens))
    body = event_list([audit_event(1)])
    assert (
        client.post("/audit/dev", content=body, headers=JSON | {"Authorization": "Bearer s3cret-prod"}).status_code
        == 403
    )
    assert (
        client.post("/k8s-audit", content=body, headers=JSON | {"Authorization": "Bearer s3cret-prod"}).json()[
            "cluster"
        ]
        == "prod"
    )
    assert (
        client.post("/audit/dev", content=body, headers=JSON | {"Authorization": "Bearer s3cret-any"}).json()["cluster"]
        == "dev"
    )


# ----- durability, health and metrics ---------------------------------------------------------------------------


def test_a_full_disk_gets_503_and_the_retry_after_space_returns_is_stored_once(
    store: Store, disk: SwitchableDisk, registry: Registry
) -> None:
    client = client_for(store, registry)
    first = event_list([audit_event(number) for number in range(3)])
    assert client.post("/audit/c1", content=first, headers=JSON).status_code == 200
    disk.full = True
    second = event_list([audit_event(number) for number in range(3, 6)])
    response = client.post("/audit/c1", content=second, headers=JSON)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert client.get("/readyz").status_code == 503
    assert len(stored(store)) == 3
    disk.full = False
    retried = client.post("/audit/c1", content=second, headers=JSON)
    assert retried.status_code == 200 and retried.json()["accepted"] == 3
    assert client.get("/readyz").status_code == 200
    assert [audit_id for _, audit_id, _ in stored(store)] == [audit_event(n)["auditID"] for n in range(6)]
    assert 'kubetrail_receiver_requests_total{path="/audit",code="503"} 1' in registry.exposition().decode()


def test_health_readiness_and_shutdown(store: Store) -> None:
    receiver = Receiver(store)
    client = AsgiClient(receiver)
    assert client.get("/healthz").text == "ok\n"
    assert client.get("/readyz").status_code == 200
    receiver.accepting = False
    assert client.get("/readyz").status_code == 503
    assert client.post("/audit/c1", content=event_list([audit_event(1)]), headers=JSON).status_code == 503
    assert stored(store) == []


def test_metrics_are_prometheus_text_with_the_fsync_histogram(store: Store, registry: Registry) -> None:
    client = client_for(store, registry)
    body = event_list([audit_event(number) for number in range(10)])
    client.post("/audit/c1", content=body, headers=JSON)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert "# TYPE kubetrail_wal_fsync_seconds histogram" in text
    buckets = [line for line in text.splitlines() if line.startswith("kubetrail_wal_fsync_seconds_bucket")]
    assert buckets[-1].startswith('kubetrail_wal_fsync_seconds_bucket{le="+Inf"}')
    counts = [int(line.rsplit(" ", 1)[1]) for line in buckets]
    assert counts == sorted(counts) and counts[-1] >= 1
    assert f'kubetrail_receiver_bytes_total{{cluster="c1"}} {len(body)}' in text
    assert "kubetrail_receiver_queue_depth 0" in text


def test_a_large_batch_is_stored_whole(store: Store) -> None:
    events = [audit_event(number) | {"requestObject": {"pad": "p" * 700}} for number in range(1500)]
    body = event_list(events)
    assert len(body) > 1 << 20
    response = client_for(store).post("/audit/big", content=body, headers=JSON)
    assert response.status_code == 200 and response.json()["accepted"] == 1500
    assert len(stored(store)) == 1500
