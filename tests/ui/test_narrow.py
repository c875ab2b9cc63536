"""Searches, lists and profiles answered from the snapshot's pre-aggregations stay exact: a small store written
by the test (part sealed, part still in the tail) holds requests of two stages spread over several minutes, and
every count, facet and page follows from those events (a request counts once, when it completes)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from kubetrail.model import decode_event
from kubetrail.store import Store
from kubetrail.ui.data import UIData
from kubetrail.ui.snapshot import StoreSnapshot
from tests.serve.helpers import audit_event

USERS = ("alice@example.com", "bob@example.com", "system:serviceaccount:ci:deployer")
NAMESPACES = ("shop", "payments", "ci")
CODES = (200, 201, 403, 404)


def _request(number: int) -> list[dict[str, Any]]:
    """Both stages of one request (RequestReceived without a code, ResponseComplete with it)."""
    user = USERS[number % 3]
    namespace = NAMESPACES[number % 5 % 3]
    code = CODES[number % 7 % 4]
    verb = ("get", "list", "create", "patch")[number % 4]
    stages = []
    for stage in ("RequestReceived", "ResponseComplete"):
        event = audit_event(number * 7, stage=stage)
        event["user"]["username"] = user
        event["verb"] = verb
        event["objectRef"] = {"resource": "secrets", "namespace": namespace, "name": f"s{number % 4}"}
        if stage == "ResponseComplete":
            event["responseStatus"] = {"metadata": {}, "code": code}
        else:
            del event["responseStatus"]
        stages.append(event)
    return stages


REQUESTS = [_request(number) for number in range(1, 400)]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIData]:
    store = Store.open(tmp_path_factory.mktemp("narrow") / "store")
    events = [event for stages in REQUESTS for event in stages]
    raws = [json.dumps(event).encode() for event in events]
    decoded = [decode_event(raw) for raw in raws]
    store.append("prod", decoded[:500], raws[:500])
    store.seal()
    store.append("prod", decoded[500:], raws[500:])
    snapshot = StoreSnapshot(store)
    try:
        yield UIData(snapshot)
    finally:
        snapshot.close()
        store.close()


def _matching(predicate: Any) -> list[list[dict[str, Any]]]:
    return [stages for stages in REQUESTS if any(predicate(event) for event in stages)]


def _complete(stages: list[dict[str, Any]]) -> dict[str, Any]:
    return next(event for event in stages if event["stage"] == "ResponseComplete")


def test_a_search_counts_and_facets_the_requests_it_matches(data: UIData) -> None:
    def failed_secret_reads(event: dict[str, Any]) -> bool:
        return (event.get("responseStatus") or {}).get("code", 0) >= 400

    expected = _matching(failed_secret_reads)
    stats = data.search_stats("resource=secrets code>=400")
    assert stats.requests == len(expected) > 0
    assert sum(stats.histogram) + sum(stats.failed) == len(expected) == sum(stats.failed)
    facets = {facet.title: dict(facet.values) for facet in stats.facets}
    assert facets["namespace"] == dict(Counter(_complete(stages)["objectRef"]["namespace"] for stages in expected))
    codes = Counter(_complete(stages)["responseStatus"]["code"] for stages in expected)
    assert facets["code"] == {str(code): count for code, count in codes.items()}
    first = min(stages[0]["requestReceivedTimestamp"] for stages in expected)
    assert stats.first is not None and stats.first.strftime("%Y-%m-%dT%H:%M:%S.%fZ") == first


def test_a_filter_on_a_column_not_pre_aggregated_is_answered_from_the_events(data: UIData) -> None:
    stats = data.search_stats("user=bob@example.com name=s2")
    expected = [
        stages
        for stages in REQUESTS
        if stages[0]["user"]["username"] == "bob@example.com" and stages[0]["objectRef"]["name"] == "s2"
    ]
    assert stats.requests == len(expected) > 0 and stats.events == 2 * len(expected)


@pytest.mark.parametrize("text", ["resource=secrets code>=400", "user=alice@example.com", "verb=patch ns=payments"])
def test_search_pages_list_every_matching_request_once_newest_first(data: UIData, text: str) -> None:
    expected = [
        _complete(stages)["auditID"]
        for stages in sorted(
            (stages for stages in REQUESTS if _matches(text, stages)),
            key=lambda stages: (stages[0]["requestReceivedTimestamp"], stages[0]["auditID"]),
            reverse=True,
        )
    ]
    listed: list[str | None] = []
    page = 0
    while True:
        found = data.search(text, page=page, size=7)
        listed.extend(row.audit_id for row in found.rows)
        assert all(len(row.stages) == 2 for row in found.rows)
        if not found.has_next:
            break
        page += 1
    assert listed == expected


def _matches(text: str, stages: list[dict[str, Any]]) -> bool:
    done = _complete(stages)
    terms = dict(term.split("=", 1) for term in text.replace(">=", "=>").split())
    return (
        ("resource" not in terms or done["objectRef"]["resource"] == terms["resource"])
        and ("code" not in terms or done["responseStatus"]["code"] >= int(terms["code"].lstrip(">")))
        and ("user" not in terms or done["user"]["username"] == terms["user"])
        and ("verb" not in terms or done["verb"] == terms["verb"])
        and ("ns" not in terms or done["objectRef"]["namespace"] == terms["ns"])
    )


def test_object_history_pages_are_oldest_first_and_complete(data: UIData) -> None:
    expected = [
        stages[0]["auditID"]
        for stages in REQUESTS
        if stages[0]["objectRef"]["name"] == "s1" and stages[0]["objectRef"]["namespace"] == "shop"
    ]
    listed = [
        row.audit_id
        for page in range(0, len(expected) // 5 + 1)
        for row in data.object_history("secrets", "shop", "s1", page=page, size=5).rows
    ]
    assert listed == expected and expected


def test_a_profile_counts_addresses_clients_and_activity_per_request(data: UIData) -> None:
    alice = [stages for stages in REQUESTS if stages[0]["user"]["username"] == "alice@example.com"]
    found = data.profile("alice@example.com")
    assert [(seen.value, seen.requests) for seen in found.source_ips] == [("10.0.0.7", len(alice))]
    assert found.activity is not None
    assert sum(sum(series) for series in found.activity.series.values()) == len(alice)
    refused = sum(1 for stages in alice if _complete(stages)["responseStatus"]["code"] >= 400)
    assert sum(found.activity.series["refused or failed"]) == refused
