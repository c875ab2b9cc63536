"""Fuzzing the receiver's request bodies in-process: never a 5xx while the disk is fine, never a crash, and a
request stores either all of its valid events or none (the store grows by exactly what the answer reports)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubetrail.collect.limits import Limits
from kubetrail.collect.receiver import Receiver
from kubetrail.store import Store, StoreOptions
from tests.serve.helpers import AsgiClient, audit_event

JSON = {"Content-Type": "application/json"}
ALLOWED = {200, 400, 413, 415, 422}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
FIELDS = list(audit_event(0))


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event, sometimes with a field removed or replaced by any JSON value."""
    event: dict[str, Any] = audit_event(draw(st.integers(0, 10_000_000)), prefix="fuzz")
    action = draw(st.sampled_from(["keep", "keep", "drop", "replace", "add"]))
    field = draw(st.sampled_from(FIELDS))
    if action == "drop":
        event.pop(field)
    elif action == "replace":
        event[field] = draw(json_values)
    elif action == "add":
        event[draw(st.text(min_size=1, max_size=12))] = draw(json_values)
    return event


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    kind = draw(st.sampled_from(["list", "array", "event", "json", "bytes", "truncated"]))
    events = draw(st.lists(mutated_events(), max_size=6))
    if kind == "list":
        body = json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": events}).encode()
    elif kind == "array":
        body = json.dumps(events).encode()
    elif kind == "event":
        body = json.dumps(events[0] if events else {}).encode()
    elif kind == "json":
        body = json.dumps(draw(json_values)).encode()
    elif kind == "bytes":
        body = draw(st.binary(max_size=300))
    else:
        whole = json.dumps({"kind": "EventList", "items": events}).encode()
        body = whole[: draw(st.integers(0, max(0, len(whole) - 1)))]
    headers = dict(JSON)
    if draw(st.booleans()):
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
        if draw(st.integers(0, 9)) == 0:
            body = body[: len(body) // 2]
    return body, headers


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, AsgiClient]]:
    store = Store.open(Path(tmp_path_factory.mktemp("fuzz")) / "store", StoreOptions(background_seal=False))
    client = AsgiClient(Receiver(store, limits=Limits(max_body_bytes=64 << 10, max_event_bytes=2048)))
    yield store, client
    client.close()
    store.close()


def count(store: Store) -> int:
    stats = store.stats()
    return stats.tail_rows + stats.sealed_rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=bodies())
def test_any_body_gets_a_4xx_or_a_complete_200(
    target: tuple[Store, AsgiClient], case: tuple[bytes, dict[str, str]]
) -> None:
    store, client = target
    body, headers = case
    before, letters = count(store), store.dead_letters.count
    response = client.post("/audit/fuzz", content=body, headers=headers)
    assert response.status_code in ALLOWED, response.text
    after = count(store)
    if response.status_code == 200:
        summary = response.json()
        assert after - before == summary["accepted"]
        assert store.dead_letters.count - letters == summary["rejected"]
    else:
        assert after == before
        assert response.text.endswith("\n") and response.text.count("\n") == 1
        if response.status_code != 422:
            assert store.dead_letters.count == letters
