"""Sigma correlations as stateful rules: event_count, value_count, temporal and temporal_ordered, in event time.

Expectations are counted by hand from the Sigma correlation specification: a group alerts when the
condition is reached within `timespan`; rules a correlation refers to stay quiet unless `generate: true`.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubetrail.detect import Engine
from kubetrail.detect.priority import Priority
from kubetrail.detect.sigma import SigmaRuleError
from tests.detect.helpers import context
from tests.detect.sigma.helpers import engine, sigma

FORBIDDEN = """title: Forbidden request
id: 0f000000-0000-4000-8000-000000000001
name: forbidden_request
level: low
logsource:
    product: kubernetes
    service: audit
detection:
    s:
        responseStatus.code: 403
    condition: s
"""

SECRET_LIST = """title: Secrets listed
id: 0f000000-0000-4000-8000-000000000002
name: secrets_listed
logsource:
    product: kubernetes
    service: audit
detection:
    s:
        verb: list
        objectRef.resource: secrets
    condition: s
"""

EXEC = """title: Exec into pod
id: 0f000000-0000-4000-8000-000000000003
name: pod_exec
logsource:
    product: kubernetes
    service: audit
detection:
    s:
        verb: create
        objectRef.subresource: exec
    condition: s
"""

BINDING = """title: Binding created
id: 0f000000-0000-4000-8000-000000000004
name: binding_created
logsource:
    product: kubernetes
    service: audit
detection:
    s:
        verb: create
        objectRef.resource: clusterrolebindings
    condition: s
"""


def correlation(kind: str, rules: list[str], condition: str, *, timespan: str = "5m", extra: str = "") -> str:
    listed = "".join(f"        - {rule}\n" for rule in rules)
    return (
        f"title: Correlated {kind}\nid: 0f000000-0000-4000-8000-0000000000c1\nlevel: high\n"
        f"tags:\n    - attack.discovery\n    - attack.t1613\n"
        f"correlation:\n    type: {kind}\n    rules:\n{listed}    group-by:\n        - user.username\n"
        f"    timespan: {timespan}\n{condition}{extra}"
    )


def at(seconds: int, user: str, **changes: Any) -> Any:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    stamp = f"2024-05-01T{10 + hours:02d}:{minutes:02d}:{secs:02d}.000000Z"
    return context(user={"username": user}, stageTimestamp=stamp, requestReceivedTimestamp=stamp, **changes)


def forbidden(seconds: int, user: str) -> Any:
    return at(seconds, user, responseStatus={"metadata": {}, "code": 403}, verb="get")


def run(detector: Engine, events: list[Any]) -> list[tuple[int, str]]:
    """(index of the event, rule) for every alert, in order."""
    return [(index, alert.rule) for index, ctx in enumerate(events) for alert in detector.detect(ctx)]


def test_event_count_alerts_on_the_nth_event_within_the_timespan_per_group() -> None:
    detector = engine(
        FORBIDDEN + "---\n" + correlation("event_count", ["forbidden_request"], "    condition:\n        gte: 3\n")
    )
    events = [
        forbidden(0, "alice"),
        forbidden(10, "bob"),
        forbidden(60, "alice"),
        forbidden(400, "bob"),  # bob's first was 390 s earlier: outside 5m
        forbidden(120, "alice"),  # alice's third within 5m -> alert
        forbidden(500, "bob"),  # bob has two within 5m (400, 500)
    ]
    assert run(detector, events) == [(4, "Correlated event_count")]


def test_event_count_alert_carries_priority_group_and_mitre() -> None:
    detector = engine(FORBIDDEN, correlation("event_count", ["forbidden_request"], "    condition:\n        gte: 2\n"))
    detector.detect(forbidden(0, "alice"))
    (alert,) = detector.detect(forbidden(30, "alice"))
    assert alert.priority is Priority.ERROR  # level: high
    assert alert.message.startswith("Correlated event_count (Sigma event_count correlation: user=alice verb=get ")
    assert alert.message.endswith("(count=2 window=5m)")
    assert alert.output_fields["user.username"] == "alice"
    assert alert.mitre == ("T1613",)
    assert "attack.discovery" in alert.tags


def test_gt_needs_one_more_than_the_count() -> None:
    detector = engine(FORBIDDEN, correlation("event_count", ["forbidden_request"], "    condition:\n        gt: 2\n"))
    assert run(detector, [forbidden(0, "a"), forbidden(1, "a"), forbidden(2, "a")]) == [(2, "Correlated event_count")]


def test_referenced_rules_alert_alone_only_with_generate() -> None:
    quiet = engine(FORBIDDEN, correlation("event_count", ["forbidden_request"], "    condition:\n        gte: 5\n"))
    assert quiet.detect(forbidden(0, "a")) == []
    loud = engine(
        FORBIDDEN,
        correlation(
            "event_count", ["forbidden_request"], "    condition:\n        gte: 5\n", extra="    generate: true\n"
        ),
    )
    assert [alert.rule for alert in loud.detect(forbidden(0, "a"))] == ["Forbidden request"]


def test_value_count_counts_distinct_values_per_group() -> None:
    condition = "    condition:\n        gte: 3\n        field: objectRef.namespace\n"
    detector = engine(SECRET_LIST, correlation("value_count", ["secrets_listed"], condition, timespan="10m"))

    def listing(seconds: int, user: str, namespace: str) -> Any:
        return at(seconds, user, verb="list", objectRef={"resource": "secrets", "namespace": namespace})

    events = [
        listing(0, "alice", "ns1"),
        listing(10, "alice", "ns2"),
        listing(20, "alice", "ns2"),  # not a new value
        listing(30, "bob", "ns3"),  # another group
        listing(40, "alice", "ns3"),  # third distinct namespace for alice -> alert
    ]
    assert run(detector, events) == [(4, "Correlated value_count")]


EXEC_EVENT = {"verb": "create", "objectRef": {"resource": "pods", "subresource": "exec", "namespace": "default"}}
BINDING_EVENT = {"verb": "create", "objectRef": {"resource": "clusterrolebindings", "name": "x"}}


@pytest.mark.parametrize(
    ("kind", "first", "second", "gap", "expected"),
    [
        ("temporal_ordered", EXEC_EVENT, BINDING_EVENT, 60, True),
        ("temporal_ordered", BINDING_EVENT, EXEC_EVENT, 60, False),  # wrong order
        ("temporal_ordered", EXEC_EVENT, BINDING_EVENT, 700, False),  # beyond 10m
        ("temporal", BINDING_EVENT, EXEC_EVENT, 60, True),  # any order
        ("temporal", EXEC_EVENT, BINDING_EVENT, 700, False),
    ],
)
def test_temporal_correlations(
    kind: str, first: dict[str, Any], second: dict[str, Any], gap: int, expected: bool
) -> None:
    detector = engine(EXEC, BINDING, correlation(kind, ["pod_exec", "binding_created"], "", timespan="10m"))
    events = [at(0, "mallory", **first), at(gap // 2, "alice", **second), at(gap, "mallory", **second)]
    assert run(detector, events) == ([(2, f"Correlated {kind}")] if expected else [])


def test_aliases_group_different_fields_under_one_name() -> None:
    text = (
        "title: Same name\nid: 0f000000-0000-4000-8000-0000000000c2\n"
        "correlation:\n    type: temporal\n    rules:\n        - pod_exec\n        - binding_created\n"
        "    group-by:\n        - actor\n    timespan: 10m\n    aliases:\n        actor:\n"
        "            pod_exec: user.username\n            binding_created: objectRef.name\n"
    )
    detector = engine(EXEC, BINDING, text)
    events = [at(0, "x", **EXEC_EVENT), at(30, "someone-else", **BINDING_EVENT)]  # binding named x
    assert run(detector, events) == [(1, "Same name")]


def test_a_stream_cannot_decide_lt_conditions() -> None:
    with pytest.raises(SigmaRuleError) as caught:
        engine(FORBIDDEN, correlation("event_count", ["forbidden_request"], "    condition:\n        lt: 3\n"))
    assert "Correlated event_count" in str(caught.value)
    assert "lt" in str(caught.value)


def test_a_reference_to_an_unknown_rule_is_an_error() -> None:
    with pytest.raises(SigmaRuleError) as caught:
        engine(FORBIDDEN, correlation("event_count", ["no_such_rule"], "    condition:\n        gte: 3\n"))
    assert "no_such_rule" in str(caught.value)


def test_a_correlation_over_rules_for_other_logs_is_skipped_with_a_notice() -> None:
    windows = (
        "title: Win\nname: win_rule\nlogsource:\n    product: windows\n"
        "detection:\n    s:\n        Image: x\n    condition: s\n"
    )
    rules = sigma(windows, correlation("event_count", ["win_rule"], "    condition:\n        gte: 3\n"))
    assert rules.correlations == []
    assert any("Correlated event_count" in str(notice) and "win_rule" in str(notice) for notice in rules.notices)


def test_unknown_reference_error_names_the_correlation_file() -> None:
    with pytest.raises(SigmaRuleError) as caught:
        engine(FORBIDDEN, correlation("event_count", ["no_such_rule"], "    condition:\n        gte: 3\n"))
    assert caught.value.source == "rule-1.yml"
