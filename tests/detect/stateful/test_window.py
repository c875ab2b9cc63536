"""Sliding-window thresholds and distinct-value counts, in event time."""

from __future__ import annotations

from kubetrail.detect.priority import Priority
from kubetrail.detect.stateful import StatefulDetector, ThresholdSpec, ValueCountSpec
from tests.detect.stateful.events import at, forbidden


def enumeration(**overrides: object) -> StatefulDetector:
    settings: dict[str, object] = {
        "name": "enumeration",
        "match": forbidden,
        "group_by": ("ka.user.name",),
        "window_s": 300,
        "count": 20,
        "priority": Priority.NOTICE,
        "output": "permission enumeration by %ka.user.name",
    }
    settings.update(overrides)
    return StatefulDetector([ThresholdSpec(**settings)])  # type: ignore[arg-type]


def run(detector: StatefulDetector, events: list[object]) -> list[str]:
    alerts = []
    for ctx in events:
        alerts.extend(detector.detect(ctx))  # type: ignore[arg-type]
    return [alert.audit_id for alert in alerts]


def test_nineteen_forbidden_in_five_minutes_do_not_alert() -> None:
    assert run(enumeration(), [at(10 * index, code=403) for index in range(19)]) == []


def test_the_twentieth_alerts_once_with_count_and_window() -> None:
    detector = enumeration()
    alerts = []
    for index in range(25):
        alerts.extend(detector.detect(at(10 * index, code=403)))
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.audit_id == "id-jane-190"
    assert alert.rule == "enumeration"
    assert alert.priority is Priority.NOTICE
    assert alert.output_fields["stateful.count"] == "20"
    assert alert.output_fields["stateful.window"] == "5m"
    assert alert.output_fields["ka.user.name"] == "jane"
    assert alert.message.startswith("permission enumeration by jane")


def test_events_not_selected_do_not_count() -> None:
    events = [at(index, code=403 if index % 2 else 200) for index in range(38)]
    assert run(enumeration(), events) == []


def test_the_window_slides_old_events_out() -> None:
    early = [at(index, code=403) for index in range(19)]
    late = [at(400 + index, code=403) for index in range(19)]
    assert run(enumeration(), early + late) == []


def test_twenty_spread_wider_than_the_window_do_not_alert() -> None:
    assert run(enumeration(), [at(16 * index, code=403) for index in range(20)]) == []


def test_groups_are_independent() -> None:
    events = [at(index, code=403, user="alice" if index % 2 else "bob") for index in range(38)]
    assert run(enumeration(), events) == []
    both = [at(index, code=403, user=user) for index in range(20) for user in ("alice", "bob")]
    assert sorted(run(enumeration(), both)) == ["id-alice-19", "id-bob-19"]


def test_one_alert_per_window_then_again_when_activity_continues() -> None:
    events = [at(5 * index, code=403) for index in range(200)]
    assert run(enumeration(), events) == ["id-jane-95", "id-jane-395", "id-jane-695", "id-jane-995"]


def test_out_of_order_events_within_the_window_count() -> None:
    times = list(range(20))
    times[5], times[15] = times[15], times[5]
    assert run(enumeration(), [at(time, code=403) for time in times]) == ["id-jane-19"]


def test_value_count_counts_distinct_namespaces() -> None:
    spec = ValueCountSpec(
        name="namespace sweep",
        match=lambda ctx: True,
        group_by=("ka.user.name",),
        field="ka.target.namespace",
        window_s=600,
        count=3,
    )
    detector = StatefulDetector([spec])
    same = [at(index, objectRef={"resource": "secrets", "namespace": "a"}) for index in range(5)]
    assert run(detector, same) == []
    spread = [at(10 + index, objectRef={"resource": "secrets", "namespace": name}) for index, name in enumerate("bc")]
    fired = run(detector, spread)
    assert fired == ["id-jane-11"]
    assert detector.stats()["namespace sweep"].alerts == 1
