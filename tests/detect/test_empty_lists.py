"""Checks against an empty list: nothing is in it, so they are false for every event (and fold away)."""

from __future__ import annotations

from kubetrail.detect import Engine
from tests.detect.helpers import make_event, matches, rule, ruleset

EMPTY = "- list: denied\n  items: []\n"


def test_nothing_is_in_an_empty_list() -> None:
    event = make_event()
    assert not matches("ka.user.name in (denied)", event, EMPTY)
    assert not matches("ka.user.groups intersects (denied)", event, EMPTY)
    assert not matches("ka.sourceips intersects (denied)", event, EMPTY)
    assert matches("not ka.user.name in (denied)", event, EMPTY)
    assert matches("ka.verb = create and not ka.sourceips intersects (denied)", event, EMPTY)


def test_a_rule_on_an_empty_list_is_never_evaluated_until_the_list_gets_items() -> None:
    engine = Engine(ruleset(EMPTY, rule("ka.user.name in (denied)")))
    assert engine.rules == []
    appended = "- list: denied\n  items: [jane]\n  append: true\n"
    engine = Engine(ruleset(EMPTY, appended, rule("ka.user.name in (denied)")))
    assert [alert.rule for alert in engine.evaluate(make_event())] == ["r"]
    assert engine.evaluate(make_event(user={"username": "bob"})) == []
