"""Checkpoints: a detector restored mid-stream raises exactly the alerts of one that never stopped."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from kubetrail.detect.context import EventContext
from kubetrail.detect.stateful import (
    CheckpointError,
    FirstSeenSpec,
    SequenceSpec,
    StatefulDetector,
    ThresholdSpec,
    ValueCountSpec,
)
from tests.detect.stateful.events import at, forbidden


def _resource(ctx: EventContext) -> str:
    ref = ctx.event.objectRef
    return "" if ref is None else ref.resource or ""


def build() -> StatefulDetector:
    specs = [
        ThresholdSpec(name="forbidden", match=forbidden, group_by=("ka.user.name",), window_s=60, count=5),
        ValueCountSpec(
            name="namespaces",
            match=lambda ctx: True,
            group_by=("ka.user.name",),
            field="ka.target.namespace",
            window_s=120,
            count=3,
        ),
        SequenceSpec(
            name="pods then secrets",
            match=lambda ctx: True,
            by=("ka.user.name",),
            steps=(lambda ctx: _resource(ctx) == "pods", lambda ctx: _resource(ctx) == "secrets"),
            within_s=30,
        ),
        FirstSeenSpec(
            name="first",
            match=lambda ctx: True,
            key=("ka.user.name", "ka.target.namespace"),
            baseline_s=200,
            learn_s=50,
        ),
    ]
    return StatefulDetector(specs, max_keys=6)


def stream(count: int) -> list[EventContext]:
    chooser = random.Random(7)
    events = []
    for index in range(count):
        events.append(
            at(
                index * 2 + chooser.choice((0, 0, 0, -1)),
                user=chooser.choice(("ann", "bob", "cid", "dan", "eve", "fay", "gus", "hal")),
                code=chooser.choice((200, 403, 403)),
                objectRef={"resource": chooser.choice(("pods", "secrets")), "namespace": chooser.choice("abcde")},
            )
        )
    return events


def alerts_of(target: StatefulDetector, events: list[EventContext]) -> list[tuple[str, str]]:
    return [(alert.rule, alert.audit_id) for ctx in events for alert in target.detect(ctx)]


def test_restart_mid_stream_gives_the_same_alerts(tmp_path: Path) -> None:
    events = stream(600)
    expected = alerts_of(build(), events)
    assert {rule for rule, _ in expected} == {"forbidden", "namespaces", "pods then secrets", "first"}
    first = build()
    before = alerts_of(first, events[:317])
    path = tmp_path / "stateful.ckpt"
    first.save(str(path))
    second = build()
    second.load(str(path))
    assert before + alerts_of(second, events[317:]) == expected
    assert second.stats() == build_and_run(events).stats()
    assert [entry.name for entry in tmp_path.iterdir()] == ["stateful.ckpt"]


def build_and_run(events: list[EventContext]) -> StatefulDetector:
    target = build()
    alerts_of(target, events)
    return target


def test_checkpoint_is_versioned_json(tmp_path: Path) -> None:
    target = build()
    alerts_of(target, stream(50))
    path = tmp_path / "state.json"
    target.save(str(path))
    document = json.loads(path.read_text())
    assert (document["format"], document["version"]) == ("kubetrail-stateful", 1)
    assert set(document["rules"]) == {"forbidden", "namespaces", "pods then secrets", "first"}


def test_a_rule_missing_from_the_checkpoint_starts_empty_and_unknown_rules_are_ignored(tmp_path: Path) -> None:
    old = StatefulDetector([FirstSeenSpec(name="gone", match=lambda ctx: True, key=("ka.user.name",), baseline_s=60)])
    old.detect(at(0))
    path = tmp_path / "state.json"
    old.save(str(path))
    target = build()
    target.load(str(path))
    assert all(stats.keys == 0 for stats in target.stats().values())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "not a stateful checkpoint"),
        (b'{"format": "something-else"}', "not a stateful checkpoint"),
        (b'{"format": "kubetrail-stateful", "version": 99}', "version 99 is not supported"),
        (b'{"format": "kubetrail-stateful", "version": 1, "watermark_ns": "x"}', "damaged checkpoint"),
    ],
)
def test_unusable_checkpoints_are_refused_with_the_file_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as caught:
        build().load(str(path))
    assert str(path) in str(caught.value)


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        build().load(str(tmp_path / "absent.json"))


def _first_seen(name: str) -> FirstSeenSpec:
    return FirstSeenSpec(name=name, match=lambda ctx: True, key=("ka.user.name",), baseline_s=86400, learn_s=3600)


def test_learning_is_not_restarted_by_a_restore_but_a_new_rule_learns(tmp_path: Path) -> None:
    old = StatefulDetector([_first_seen("kept")])
    old.detect(at(0, user="ann"))
    path = tmp_path / "state.json"
    old.save(str(path))
    restored = StatefulDetector([_first_seen("kept"), _first_seen("added")])
    restored.load(str(path))
    fired = [alert.rule for alert in restored.detect(at(4000, user="bob"))]
    assert fired == ["kept"]
    assert [alert.rule for alert in restored.detect(at(4000 + 3600, user="cid"))] == ["kept", "added"]
