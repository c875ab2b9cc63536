"""Ten thousand hostile bodies against the receiver: no crash, no 5xx, every good event of a mixed batch stored,
and dead letters no larger than twice the bytes refused.

Each body mixes good events (numbered, so the test knows which must be stored) with hostile items from the
families an attacker or a broken peer sends: deep nesting, out-of-range and malformed timestamps, invalid UTF-8,
oversized events, wrong types, unknown kinds and versions, binary garbage, numbers beyond int64, duplicate keys,
control characters. Bodies are EventLists, bare arrays, or single items, some gzip'd (some as many tiny gzip
members). The store is real; its fsync is a no-op here because durability is not what this suite checks
(tests/serve/test_crash.py does), and ten thousand fsyncs would only slow it down.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kubetrail.collect.limits import Limits
from kubetrail.collect.receiver import Receiver
from kubetrail.store import FileOps, Store, StoreOptions
from tests.serve.helpers import AsgiClient, audit_event

BODIES = 10_000
MAX_EVENT_BYTES = 16 << 10
ALLOWED = {200, 400, 413, 415, 422}


class _NoSync(FileOps):
    def fsync(self, fd: int) -> None:
        pass


def _good(number: int) -> bytes:
    return json.dumps(audit_event(number, prefix="good")).encode()


def _base(number: int) -> dict[str, object]:
    return audit_event(number, prefix="bad")


def _deep(number: int, depth: int) -> bytes:
    return json.dumps(_base(number))[:-1].encode() + b', "requestObject": ' + b"[" * depth + b"]" * depth + b"}"


def _with(number: int, **fields: object) -> bytes:
    return json.dumps({**_base(number), **fields}).encode()


IN_BATCH: list[Callable[[int, random.Random], bytes]] = [
    lambda n, r: _deep(n, r.choice([20_000, 60_000])),
    lambda n, r: _with(
        n, requestReceivedTimestamp="0000-01-01T00:00:00Z", stageTimestamp="0000-01-01T00:00:00Z", level=7
    ),
    lambda n, r: _with(n, stage="Done"),
    lambda n, r: _with(n, level="Everything"),
    lambda n, r: _with(n, user=None),
    lambda n, r: _with(n, user={"username": ["x"]}),
    lambda n, r: _with(n, apiVersion="audit.k8s.io/v9"),
    lambda n, r: _with(n, kind="Pod"),
    lambda n, r: _with(n, verb=r.randint(-(2**70), 2**70)),
    lambda n, r: _with(n, auditID=None),
    lambda n, r: _with(n, requestObject={"data": "x" * (MAX_EVENT_BYTES + r.randint(1, 5000))}),
    lambda n, r: json.dumps(_with_stage(n)).encode().replace(b'"verb": "get"', b'"verb": "g\xff\xfe"'),
    lambda n, r: b'{"kind": "Event", "stage": "ResponseComplete", "stage": 5}',
    lambda n, r: b'"' + b"\\u0000" * r.randint(1, 40) + b'"',
    lambda n, r: b"1e999999",
    lambda n, r: b"{}",
    lambda n, r: b"null",
]
"""Items that keep their batch well-formed JSON but are not valid events: each must cost only itself."""

WHOLE: list[Callable[[int, random.Random], bytes]] = [
    lambda n, r: json.dumps(_base(n)).encode()[: r.randint(1, 200)],
    lambda n, r: bytes(r.getrandbits(8) for _ in range(r.randint(1, 64))),
    lambda n, r: b"[" * r.randint(1, 50),
    lambda n, r: b"[" * 200_000 + b"]" * 200_000,
    lambda n, r: b'{"kind":"EventList","items":' + b"[" * 100_000,
]
"""Bodies that are not JSON at all: refused whole (400), as the apiserver never sends them."""


def _with_stage(number: int) -> dict[str, object]:
    return _base(number)


Item = tuple[bytes, int | None]
"""A body's item: its bytes, and the number of the good event it is (None: hostile)."""


def bodies(seed: int) -> Iterator[tuple[bytes, dict[str, str], list[int], int]]:
    """(body, headers, the numbers of the good events it carries, the bytes of its hostile items)."""
    rng = random.Random(seed)
    good = 0
    for index in range(BODIES):
        if rng.random() < 0.05:
            body = rng.choice(WHOLE)(index, rng)
            numbers: list[int] = []
            hostile_bytes = 0
        else:
            items: list[Item] = []
            for _ in range(rng.randint(1, 6)):
                if rng.random() < 0.5:
                    items.append((_good(good), good))
                    good += 1
                else:
                    items.append((rng.choice(IN_BATCH)(index, rng), None))
            shape = rng.choice(["list", "list", "array", "single"])
            if shape == "single":
                items = items[:1]
            numbers = [number for _, number in items if number is not None]
            hostile_bytes = sum(len(raw) for raw, number in items if number is None)
            joined = b",".join(raw for raw, _ in items)
            if shape == "single":
                body = joined
            elif shape == "array":
                body = b"[" + joined + b"]"
            else:
                body = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[' + joined + b"]}"
        headers = {"Content-Type": "application/json"}
        if rng.random() < 0.15:
            headers["Content-Encoding"] = "gzip"
            members = gzip.compress(b"") * rng.randint(100, 3000) if rng.random() < 0.2 else b""
            body = members + gzip.compress(body)
        yield body, headers, numbers, hostile_bytes


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, AsgiClient]]:
    root = Path(tmp_path_factory.mktemp("hostile"))
    store = Store.open(root / "store", StoreOptions(background_seal=False, file_ops=_NoSync()))
    client = AsgiClient(Receiver(store, limits=Limits(max_body_bytes=4 << 20, max_event_bytes=MAX_EVENT_BYTES)))
    yield store, client
    client.close()
    store.close()


def test_ten_thousand_hostile_bodies(receiver: tuple[Store, AsgiClient]) -> None:
    store, client = receiver
    expected: set[str] = set()
    statuses: dict[int, int] = {}
    refused_bytes = 0
    for body, headers, numbers, hostile_bytes in bodies(seed=20261207):
        response = client.post("/audit/hostile", content=body, headers=headers)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code in ALLOWED, (response.status_code, response.text, body[:200])
        if response.status_code in (200, 422):
            expected.update(audit_event(number, prefix="good")["auditID"] for number in numbers)
            refused_bytes += hostile_bytes
        if numbers:
            assert response.status_code == 200, (response.text, body[:200])
    assert sum(statuses.values()) == BODIES
    assert statuses.get(200, 0) > BODIES // 2
    stored = {row[0] for row in store.query_connection().execute("SELECT audit_id FROM events").fetchall()}
    assert expected <= stored
    assert {audit_id for audit_id in stored if audit_id.startswith("bad-")} == set()
    store.dead_letters.flush()
    assert store.dead_letters.bytes <= 2 * refused_bytes
