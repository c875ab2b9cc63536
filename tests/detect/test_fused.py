"""A bucket's rules run as one generated function: it must select exactly the rules whose conditions hold."""

from __future__ import annotations

from typing import Any

import pytest

from kubetrail.detect import BUILTIN, Engine, EventContext, Matching, load_ruleset, rule_sources
from kubetrail.detect.codegen import fuse
from kubetrail.detect.stateful import StatefulDetector
from kubetrail.emit.generator import SCENARIOS, GeneratorConfig, generate
from kubetrail.policy.evaluate import compile_policy
from kubetrail.policy.presets import load_preset
from kubetrail.policy.record import record
from tests.detect.helpers import context, matches


def _recorded_stream() -> list[EventContext]:
    """A busy generated cluster with every attack scenario, as the recommended policy records it."""
    evaluate = compile_policy(load_preset("recommended").policy).evaluate_event
    config = GeneratorConfig(seed=11, nodes=3, rate=40.0, duration=240.0, scenarios=tuple(SCENARIOS))
    contexts = []
    for event in generate(config):
        kept = record(event, evaluate(event))
        if kept is not None:
            contexts.append(EventContext(kept))
    return contexts


@pytest.fixture(scope="module")
def stream() -> list[EventContext]:
    return _recorded_stream()


@pytest.mark.parametrize("matching", [Matching.ALL, Matching.FIRST])
def test_builtin_buckets_select_what_the_conditions_say(stream: list[EventContext], matching: Matching) -> None:
    loaded = load_ruleset(rule_sources([BUILTIN]))
    engine = Engine(loaded, matching=matching)
    fired = 0
    for ctx in stream:
        expected = [rule.name for rule in engine.rules if rule.predicate(ctx)]
        if matching is Matching.FIRST:
            expected = expected[:1]
        got = [rule.name for rule in engine.matches(ctx)]
        assert got == expected, ctx.event.auditID
        fired += bool(got)
    assert fired > 0  # the attack scenarios are in the stream


def test_stateful_buckets_select_what_the_conditions_say(stream: list[EventContext]) -> None:
    loaded = load_ruleset(rule_sources([BUILTIN]))
    detector = StatefulDetector(loaded.stateful)
    selected = 0
    for ctx in stream:
        event = ctx.event
        ref = event.objectRef
        key = (event.stage, event.verb, ref.resource or None if ref else None, ref.subresource or None if ref else None)
        admitted = [runner for runner in detector.runners if runner.admits is None or runner.admits(key)]
        expected = [runner.name for runner in admitted if runner.spec.match(ctx)]
        got = [runner.name for runner in detector._bucket(key)(ctx)]
        assert got == expected
        selected += len(got)
    assert selected > 0


@pytest.mark.parametrize(
    ("condition", "code", "expected"),
    [
        ("ka.response.code = 403", 403, True),
        ("ka.response.code = 403", 401, False),
        ("ka.response.code in (401, 403)", 401, True),
        ("ka.response.code in (401, 403)", 200, False),
        ("ka.response.code = 0", 0, False),  # a zero code is a missing field: nothing equals it
        ("ka.response.code = 0403", 403, False),  # compared as text, as Falco does: "403" is not "0403"
        ("ka.response.code = 403", None, False),
        ("ka.response.code != 403", None, False),
        ("ka.response.code startswith 4", 404, True),
    ],
)
def test_response_codes_compare_as_their_text(condition: str, code: int | None, expected: bool) -> None:
    status: Any = {"metadata": {}} if code is None else {"metadata": {}, "code": code}
    assert matches(condition, context(responseStatus=status)) is expected


def test_fuse_keeps_order_and_mixes_generated_and_plain_predicates() -> None:
    loaded = load_ruleset(rule_sources([BUILTIN]))
    generated = loaded.rules[0].residual
    pairs = [(lambda ctx: True, "plain-true"), (generated, "generated"), (lambda ctx: False, "plain-false")]
    ctx = context()
    expected = [item for predicate, item in pairs if predicate(ctx)]
    assert fuse(pairs)(ctx) == expected
    assert fuse(pairs, first=True)(ctx) == expected[:1]
    assert fuse([])(ctx) == []


MACROS = """
- macro: platform_user
  condition: (ka.user.name startswith "eks:" or ka.user.name = "gke-admin")
"""


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("alice", True),  # = alice
        ("bob", True),  # in (bob, carol)
        ("carol", True),
        ("system:node:n1", True),  # startswith system:
        ("eks:addon", True),  # from the macro's startswith, merged with the outer ones
        ("gke-admin", True),  # from the macro's =, merged with the outer members
        ("mallory", False),
        ("", False),  # a missing user name equals nothing and starts with nothing
    ],
)
def test_alternatives_on_one_field_merge_without_changing_the_meaning(user: str, expected: bool) -> None:
    condition = (
        'ka.user.name = alice or ka.user.name startswith "system:" or ka.user.name in (bob, carol)'
        " or platform_user or ka.verb = deletecollection"
    )
    ctx = context(user={"username": user, "groups": []})
    assert matches(condition, ctx, MACROS) is expected
    assert matches(f"not ({condition})", ctx, MACROS) is not expected


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("jane", True),
        ("system:node:n1", False),
        ("eks:addon", False),
        ("alice", False),
        ("bob", False),
        ("", False),  # `exists` is false for a missing user name
    ],
)
def test_negated_tests_of_one_field_merge_without_changing_the_meaning(user: str, expected: bool) -> None:
    condition = (
        'ka.user.name exists and not ka.user.name startswith "system:" and not ka.user.name startswith "eks:"'
        " and not ka.user.name = alice and not ka.user.name in (bob)"
    )
    ctx = context(user={"username": user, "groups": []})
    assert matches(condition, ctx) is expected


def test_rule_sets_with_the_same_shape_but_other_values_do_not_share_folded_code() -> None:
    from tests.detect.helpers import make_event, rule, ruleset

    event = make_event(verb="delete", objectRef={"resource": "pods", "namespace": "default", "name": "web"})
    # the same condition text, so the same generated source; only the list's values differ
    first = Engine(ruleset(rule("ka.verb = delete and not ka.target.resource in (pods)", name="not-pods")))
    second = Engine(ruleset(rule("ka.verb = delete and not ka.target.resource in (secrets)", name="not-secrets")))
    assert [alert.rule for alert in first.evaluate(event)] == []
    assert [alert.rule for alert in second.evaluate(event)] == ["not-secrets"]
    assert [alert.rule for alert in first.evaluate(event)] == []


@pytest.mark.parametrize("users", [("alice", "bob"), ("carol", "dave")])
def test_conditions_on_the_user_are_remembered_per_user_and_per_rule_set(users: tuple[str, str]) -> None:
    from tests.detect.helpers import make_event, rule, ruleset

    # two rules read the same user condition, so each bucket decides it once per user name
    condition = f'not (ka.user.name in ({users[0]}, {users[1]}) or ka.user.name startswith "system:")'
    engine = Engine(
        ruleset(
            rule(f"ka.verb = delete and {condition}", name="delete"),
            rule(f"ka.verb = delete and ka.target.resource = pods and {condition}", name="delete-pod"),
        ),
        matching=Matching.ALL,
    )
    for _ in range(2):  # the second round answers from the remembered results
        for user in ("alice", "bob", "carol", "dave", "system:node:n1", "mallory"):
            event = make_event(
                verb="delete",
                user={"username": user},
                objectRef={"resource": "pods", "namespace": "default", "name": "web"},
            )
            expected = [] if user in users or user.startswith("system:") else ["delete", "delete-pod"]
            assert [alert.rule for alert in engine.evaluate(event)] == expected, user
