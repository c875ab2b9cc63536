"""The engine: first versus all matching, priorities, the rule index, and extra detectors."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from kubetrail.detect import Alert, Engine, EventContext, Matching, Priority, RuleSource, load_ruleset
from kubetrail.intake import read_events
from kubetrail.model import decode_event
from tests.detect.helpers import event_dict, fired, make_event, rule, ruleset

RULES = (
    rule("ka.verb = create", name="create", priority="NOTICE")
    + rule("ka.target.resource = pods", name="pods", priority="ERROR")
    + rule("ka.verb in (get, list) or ka.target.resource = secrets", name="reads", priority="INFO")
    + rule("not ka.verb = delete", name="not delete", priority="DEBUG")
)


def test_all_matching_gives_every_rule_in_file_order() -> None:
    engine = Engine(ruleset(RULES), matching=Matching.ALL)
    assert fired(engine, make_event()) == ["create", "pods", "not delete"]


def test_first_matching_gives_the_first_rule_in_file_order() -> None:
    engine = Engine(ruleset(RULES), matching=Matching.FIRST)
    assert fired(engine, make_event()) == ["create"]
    assert fired(engine, make_event(verb="get")) == ["pods"]
    assert fired(engine, make_event(verb="delete")) == ["pods"]
    assert fired(engine, make_event(verb="delete", objectRef={"resource": "nodes", "name": "n"})) == []


def test_min_priority_drops_less_severe_rules() -> None:
    engine = Engine(ruleset(RULES), min_priority=Priority.NOTICE)
    assert fired(engine, make_event(verb="get")) == ["pods"]
    assert fired(engine, make_event()) == ["create", "pods"]


def test_index_keeps_or_alternatives_and_events_without_object() -> None:
    engine = Engine(ruleset(RULES))
    secret = make_event(verb="delete", objectRef={"resource": "secrets", "name": "s"})
    assert fired(engine, secret) == ["reads"]
    healthz = make_event(verb="get", objectRef=None, requestURI="/healthz")
    assert fired(engine, healthz) == ["reads", "not delete"]


def test_a_rule_that_can_never_match_is_compiled_but_not_tried() -> None:
    text = "- macro: never\n  condition: (jevt.rawtime exists)\n" + rule("ka.verb = create and not never")
    loaded = ruleset(text)
    assert loaded.rules[0].never
    assert Engine(loaded).rules == []


class _Counter:
    def __init__(self) -> None:
        self.seen = 0

    def detect(self, ctx: EventContext) -> list[Alert]:
        self.seen += 1
        return []


def test_extra_detectors_see_every_event() -> None:
    counter = _Counter()
    engine = Engine(ruleset(RULES), detectors=[counter])
    engine.evaluate(make_event())
    engine.evaluate(make_event(verb="watch"))
    assert counter.seen == 2


def _variants(corpus: Path) -> list[EventContext]:
    """The sample events plus variations of verb, stage, resource and subresource."""
    contexts: list[EventContext] = []
    for path in sorted((corpus / "falco" / "events").glob("*.json")):
        for line in path.read_bytes().splitlines():
            try:
                data: dict[str, Any] = json.loads(line)
                decode_event(line)
            except Exception:
                continue
            contexts.append(EventContext(decode_event(line), "", line))
            for verb, stage in itertools.product(("get", "delete", "patch"), ("ResponseStarted", "ResponseComplete")):
                changed = dict(data, verb=verb, stage=stage)
                raw = json.dumps(changed).encode()
                contexts.append(EventContext(decode_event(raw), "", raw))
    raw = json.dumps(event_dict(objectRef={"resource": "pods", "subresource": "portforward", "name": "p"})).encode()
    contexts.append(EventContext(decode_event(raw), "", raw))
    return contexts


def test_indexed_generated_predicates_agree_with_the_plain_conditions(corpus: Path) -> None:
    """For Falco's whole rules file: a rule fires through the index exactly when its condition holds."""
    rules_path = corpus / "falco" / "k8s_audit_rules.yaml"
    snippets = json.loads((corpus / "falco" / "EXPECTED.json").read_text())["override_snippets"]
    sources = [RuleSource(str(rules_path), rules_path.read_text())]
    sources += [RuleSource(name, text) for name, text in snippets.items() if name != "allow_only_apache_container"]
    loaded = load_ruleset(sources)
    engine = Engine(loaded, matching=Matching.ALL)
    checked = 0
    for ctx in _variants(corpus):
        expected = [rule.name for rule in loaded.rules if rule.predicate(ctx)]
        assert [rule.name for rule in engine.matches(ctx)] == expected
        checked += 1
    assert checked > 100


def test_the_realistic_stream_sample_agrees_too(corpus: Path) -> None:
    sample = Path(__file__).resolve().parents[2] / "bench" / "data" / "realistic-20000-7.ndjson"
    if not sample.is_file():
        pytest.skip("bench/data sample not generated")
    rules_path = corpus / "falco" / "k8s_audit_rules.yaml"
    loaded = load_ruleset([RuleSource(str(rules_path), rules_path.read_text())])
    engine = Engine(loaded, matching=Matching.ALL)
    for event in itertools.islice(read_events(sample), 3000):
        ctx = EventContext(event)
        assert [rule.name for rule in engine.matches(ctx)] == [
            rule.name for rule in loaded.rules if rule.predicate(ctx)
        ]
