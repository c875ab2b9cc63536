"""First-seen keys: new value tuples alert once, not while learning, and again once the baseline forgot them."""

from __future__ import annotations

from kubetrail.detect.context import EventContext
from kubetrail.detect.stateful import FirstSeenSpec, StatefulDetector
from tests.detect.stateful.events import at

DAY = 86400


def reads_secret(ctx: EventContext) -> bool:
    ref = ctx.event.objectRef
    return ctx.event.verb in ("get", "list") and ref is not None and ref.resource == "secrets"


def secret_in(namespace: str) -> dict[str, object]:
    return {"verb": "get", "objectRef": {"resource": "secrets", "namespace": namespace, "name": "db"}}


def detector(learn_s: float = 0) -> StatefulDetector:
    spec = FirstSeenSpec(
        name="first secret read",
        match=reads_secret,
        key=("ka.user.name", "ka.target.namespace"),
        baseline_s=30 * DAY,
        learn_s=learn_s,
    )
    return StatefulDetector([spec])


def run(target: StatefulDetector, events: list[EventContext]) -> list[str]:
    return [alert.audit_id for ctx in events for alert in target.detect(ctx)]


def test_each_new_key_fires_once() -> None:
    events = [at(0, **secret_in("a")), at(10, **secret_in("a")), at(20, **secret_in("b")), at(30, **secret_in("a"))]
    events.append(at(40, user="bob", **secret_in("a")))
    assert run(detector(), events) == ["id-jane-0", "id-jane-20", "id-bob-40"]


def test_events_the_condition_rejects_are_not_learnt() -> None:
    events = [at(0, verb="create", objectRef={"resource": "pods", "namespace": "a"}), at(10, **secret_in("a"))]
    assert run(detector(), events) == ["id-jane-10"]


def test_nothing_fires_during_learning_and_learnt_keys_stay_quiet() -> None:
    target = detector(learn_s=DAY)
    learning = [at(0, **secret_in("a")), at(DAY - 1, **secret_in("b"))]
    assert run(target, learning) == []
    after = [at(DAY + 10, **secret_in("a")), at(DAY + 20, **secret_in("b")), at(DAY + 30, **secret_in("c"))]
    assert run(target, after) == [f"id-jane-{DAY + 30}"]


def test_a_key_fires_again_after_the_baseline_forgot_it() -> None:
    target = detector()
    assert run(target, [at(0, **secret_in("a")), at(29 * DAY, **secret_in("a"))]) == ["id-jane-0"]
    assert run(target, [at(29 * DAY + 30 * DAY + 1, **secret_in("a"))]) == [f"id-jane-{59 * DAY + 1}"]


def test_alert_names_the_key_and_the_baseline() -> None:
    (alert,) = detector().detect(at(0, **secret_in("a")))
    assert alert.output_fields["ka.user.name"] == "jane"
    assert alert.output_fields["ka.target.namespace"] == "a"
    assert alert.output_fields["stateful.baseline"] == "30d"
