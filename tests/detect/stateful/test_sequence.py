"""Sequences: steps in order for the same key within the bound; Sigma's unordered `temporal` too."""

from __future__ import annotations

from kubetrail.detect.context import EventContext
from kubetrail.detect.stateful import SequenceSpec, StatefulDetector
from tests.detect.stateful.events import at


def _resource(ctx: EventContext) -> str:
    ref = ctx.event.objectRef
    return "" if ref is None else f"{ref.resource}/{ref.subresource or ''}"


def is_exec(ctx: EventContext) -> bool:
    return _resource(ctx) == "pods/exec"


def is_rbac_change(ctx: EventContext) -> bool:
    return _resource(ctx).startswith(("clusterrolebindings/", "rolebindings/"))


EXEC = {"objectRef": {"resource": "pods", "subresource": "exec", "namespace": "prod", "name": "web"}}
BIND = {"objectRef": {"resource": "clusterrolebindings", "name": "takeover"}}


def detector(*, ordered: bool = True, within_s: float = 600) -> StatefulDetector:
    spec = SequenceSpec(
        name="exec then rbac",
        match=lambda ctx: True,
        by=("ka.user.name",),
        steps=(is_exec, is_rbac_change),
        within_s=within_s,
        ordered=ordered,
        output="exec then RBAC change by %ka.user.name",
    )
    return StatefulDetector([spec])


def run(target: StatefulDetector, events: list[EventContext]) -> list[str]:
    return [alert.audit_id for ctx in events for alert in target.detect(ctx)]


def test_steps_in_order_within_the_bound_fire_on_the_last_step() -> None:
    target = detector()
    alerts = [alert for ctx in (at(0, **EXEC), at(300, **BIND)) for alert in target.detect(ctx)]
    assert [alert.audit_id for alert in alerts] == ["id-jane-300"]
    assert alerts[0].output_fields["stateful.within"] == "10m"
    assert alerts[0].message.startswith("exec then RBAC change by jane")


def test_steps_out_of_order_do_not_fire() -> None:
    assert run(detector(), [at(0, **BIND), at(300, **EXEC)]) == []


def test_steps_beyond_the_bound_do_not_fire() -> None:
    assert run(detector(), [at(0, **EXEC), at(601, **BIND)]) == []


def test_a_later_first_step_restarts_the_clock() -> None:
    assert run(detector(), [at(0, **EXEC), at(500, **EXEC), at(900, **BIND)]) == ["id-jane-900"]


def test_steps_by_different_users_do_not_combine() -> None:
    assert run(detector(), [at(0, user="alice", **EXEC), at(60, user="bob", **BIND)]) == []


def test_a_completed_sequence_starts_over() -> None:
    events = [at(0, **EXEC), at(10, **BIND), at(20, **BIND)]
    assert run(detector(), events) == ["id-jane-10"]


def test_unordered_steps_fire_in_any_order() -> None:
    assert run(detector(ordered=False), [at(0, **BIND), at(300, **EXEC)]) == ["id-jane-300"]
    assert run(detector(ordered=False), [at(0, **BIND), at(700, **EXEC)]) == []


def test_three_steps_need_the_middle_one() -> None:
    spec = SequenceSpec(
        name="three",
        match=lambda ctx: True,
        by=("ka.user.name",),
        steps=(is_exec, lambda ctx: _resource(ctx) == "secrets/", is_rbac_change),
        within_s=600,
    )
    secret = {"objectRef": {"resource": "secrets", "namespace": "prod", "name": "db"}}
    assert run(StatefulDetector([spec]), [at(0, **EXEC), at(10, **BIND)]) == []
    assert run(StatefulDetector([spec]), [at(0, **EXEC), at(5, **secret), at(10, **BIND)]) == ["id-jane-10"]


def test_a_first_step_arriving_a_few_seconds_late_still_completes_the_sequence() -> None:
    assert run(detector(), [at(12, **BIND), at(10, **EXEC)]) == ["id-jane-10"]


def test_a_step_later_than_the_tolerated_lateness_does_not_complete_it() -> None:
    assert run(detector(), [at(20, **BIND), at(10, **EXEC)]) == []


def test_a_late_event_does_not_reorder_steps_that_really_happened_backwards() -> None:
    secret = {"objectRef": {"resource": "secrets", "namespace": "prod", "name": "db"}}
    spec = SequenceSpec(
        name="three",
        match=lambda ctx: True,
        by=("ka.user.name",),
        steps=(is_exec, lambda ctx: _resource(ctx) == "secrets/", is_rbac_change),
        within_s=600,
    )
    target = StatefulDetector([spec])
    assert run(target, [at(10, **BIND), at(12, **EXEC), at(11, **secret)]) == []
