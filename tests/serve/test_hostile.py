"""Hostile input and broken peers against a real `serve` on loopback: nothing they send costs data or service."""

from __future__ import annotations

import gzip
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kubetrail.collect.metrics import MAX_CLUSTER_LABELS
from kubetrail.serve import connections
from kubetrail.serve.config import build_config
from kubetrail.serve.server import BackgroundServer
from tests.serve.helpers import audit_event, audit_ids, event_list

JSON = {"content-type": "application/json"}


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    monkeypatch.setattr(connections, "HEADER_TIMEOUT", 1.0)
    monkeypatch.setattr(connections, "IDLE_TIMEOUT", 1.0)
    config = build_config({}, {"store": str(tmp_path / "store"), "listen": "127.0.0.1:0", "rules": [], "ui": False})
    server = BackgroundServer(config)
    url = server.start()
    try:
        yield url, tmp_path / "store"
    finally:
        server.stop()


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def test_idle_connections_do_not_starve_health_or_the_apiserver(served: tuple[str, Path]) -> None:
    """Hundreds of connections that send one byte and stop: health and batches are still answered, and the
    stalled connections are closed within seconds."""
    url, store = served
    stalled: list[socket.socket] = []
    for _ in range(200):
        sock = socket.create_connection(_address(url))
        sock.sendall(b"P")
        stalled.append(sock)
    silent = [socket.create_connection(_address(url)) for _ in range(50)]
    try:
        with httpx.Client(timeout=5) as client:
            assert client.get(f"{url}/healthz").status_code == 200
            response = client.post(f"{url}/audit/prod", content=event_list([audit_event(1)]), headers=JSON)
            assert response.status_code == 200, response.text
        deadline = time.monotonic() + 10
        for sock in [*stalled, *silent]:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            assert _closed(sock), "a stalled connection was kept open"
    finally:
        for sock in [*stalled, *silent]:
            sock.close()
    assert audit_ids(store) == [audit_event(1)["auditID"]]


def _closed(sock: socket.socket) -> bool:
    """True once the server has closed the connection (a reset counts: it had unread bytes)."""
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


def test_a_slow_body_is_cut_but_a_steady_one_is_not(served: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    url, store = served
    monkeypatch.setattr(connections, "BODY_TIMEOUT", 1.0)
    body = event_list([audit_event(2)])
    head = (
        f"POST /audit/prod HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    stalled = socket.create_connection(_address(url))
    stalled.sendall(head + body[:10])
    steady = socket.create_connection(_address(url))
    steady.sendall(head)
    for start in range(0, len(body), 100):
        steady.sendall(body[start : start + 100])
        time.sleep(0.05)
    steady.settimeout(5)
    assert steady.recv(4096).startswith(b"HTTP/1.1 200")
    stalled.settimeout(5)
    assert _closed(stalled)
    steady.close()
    stalled.close()
    assert audit_ids(store) == [audit_event(2)["auditID"]]


@pytest.mark.parametrize("name", ["prod%0A", "prod%0D", "pr%00od", "..", "prod%20x", "a" * 129, "-prod"])
def test_cluster_names_are_whole_and_plain(served: tuple[str, Path], name: str) -> None:
    url, store = served
    response = httpx.post(f"{url}/audit/{name}", content=event_list([audit_event(3)]), headers=JSON)
    assert response.status_code in (400, 404), response.text
    assert audit_ids(store) == []


@pytest.mark.parametrize(
    "content_type", ["application/jsonx", "text/plain; x=application/json", "application/json-seq"]
)
def test_the_content_type_is_parsed_not_searched(served: tuple[str, Path], content_type: str) -> None:
    url, _ = served
    response = httpx.post(
        f"{url}/audit/prod", content=event_list([audit_event(4)]), headers={"content-type": content_type}
    )
    assert response.status_code == 415


def test_a_deep_body_is_refused_alone_and_its_batch_stored(served: tuple[str, Path]) -> None:
    url, store = served
    deep = audit_event(5)
    text = json.dumps(deep)[:-1] + ', "requestObject": ' + "[" * 20_000 + "]" * 20_000 + "}"
    body = (
        b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['
        + b",".join([json.dumps(audit_event(6)).encode(), text.encode(), json.dumps(audit_event(7)).encode()])
        + b"]}"
    )
    response = httpx.post(f"{url}/audit/prod", content=body, headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json() == {"cluster": "prod", "accepted": 2, "duplicates": 0, "rejected": 1}
    assert sorted(audit_ids(store)) == sorted([audit_event(6)["auditID"], audit_event(7)["auditID"]])


def _dead_letter_bytes(store: Path) -> int:
    return sum(path.stat().st_size for path in (store / "deadletter").glob("*.ndjson"))


def test_a_flood_of_invalid_items_costs_at_most_twice_its_size_in_dead_letters(served: tuple[str, Path]) -> None:
    url, store = served
    items = [b'{"kind":"Event","n":%d}' % number for number in range(90_000)]
    body = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[' + b",".join(items) + b"]}"
    response = httpx.post(f"{url}/audit/prod", content=body, headers=JSON, timeout=60)
    assert response.status_code == 422, response.text
    assert _dead_letter_bytes(store) <= 2 * sum(map(len, items))
    kept = [
        json.loads(line) for path in (store / "deadletter").glob("*.ndjson") for line in path.read_text().splitlines()
    ]
    assert sum(letter.get("items", 1) for letter in kept) == len(items)
    assert "Object missing required field `level`" in kept[0]["reason"]


def test_implausible_timestamps_are_stored_and_filed_as_received(served: tuple[str, Path]) -> None:
    """Year 0000 used to fail the whole batch; year 9999 made far-future partitions that hid the real data."""
    url, store = served
    stamps = ["0000-01-01T00:00:00.000000Z", "9999-12-31T23:59:59.999999Z", "1900-01-01T00:00:00Z"]
    odd = [
        dict(audit_event(20 + index), requestReceivedTimestamp=stamp, stageTimestamp=stamp)
        for index, stamp in enumerate(stamps)
    ]
    response = httpx.post(f"{url}/audit/prod", content=event_list([audit_event(10), *odd]), headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 4
    assert len(audit_ids(store)) == 4


def test_many_empty_gzip_members_do_not_stall_the_server(served: tuple[str, Path]) -> None:
    """400k empty members (8 MB) inflated in linear time: the request and the next one are answered promptly."""
    url, store = served
    body = gzip.compress(b"") * 400_000 + gzip.compress(event_list([audit_event(30)]))
    headers = JSON | {"content-encoding": "gzip"}
    assert httpx.post(f"{url}/audit/prod", content=body, headers=headers, timeout=30).status_code == 200
    assert (
        httpx.post(f"{url}/audit/prod", content=event_list([audit_event(31)]), headers=JSON, timeout=30).status_code
        == 200
    )
    assert len(audit_ids(store)) == 2


def test_metrics_name_a_bounded_number_of_clusters(served: tuple[str, Path]) -> None:
    url, _ = served
    with httpx.Client(timeout=10) as client:
        for number in range(MAX_CLUSTER_LABELS + 30):
            assert (
                client.post(
                    f"{url}/audit/c{number}", content=event_list([audit_event(number)]), headers=JSON
                ).status_code
                == 200
            )
        exposition = client.get(f"{url}/metrics").text
    accepted = [
        line for line in exposition.splitlines() if line.startswith("kubetrail_receiver_events_accepted_total{")
    ]
    assert len(accepted) == MAX_CLUSTER_LABELS + 1
    assert 'kubetrail_receiver_events_accepted_total{cluster="other"} 30' in exposition


def test_a_filter_nested_beyond_reason_is_an_error_page_not_a_crash(tmp_path: Path) -> None:
    config = build_config({}, {"store": str(tmp_path / "store"), "listen": "127.0.0.1:0", "rules": []})
    server = BackgroundServer(config)
    url = server.start()
    try:
        with httpx.Client(timeout=10) as client:
            deep = "(" * 3000 + "verb=get" + ")" * 3000
            page = client.get(f"{url}/ui/search", params={"q": deep})
            assert page.status_code == 400 and "nested more than" in page.text
            assert client.get(f"{url}/healthz").status_code == 200
    finally:
        server.stop()
