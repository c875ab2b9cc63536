"""Stateful rules in rule files: the three forms load and run through the Engine; bad specs name file:line."""

from __future__ import annotations

import pytest

from kubetrail.detect import Engine, Matching, Priority, RuleLoadError, RuleSource, load_ruleset
from kubetrail.detect.compiler import RuleSet
from kubetrail.detect.stateful import FirstSeenSpec, SequenceSpec, StatefulDetector, ThresholdSpec, ValueCountSpec
from tests.detect.stateful.events import at

RULES = """\
- macro: forbidden
  condition: ka.response.code = 403
- rule: Permission enumeration
  desc: many forbidden responses for one user
  condition: forbidden
  output: "%ka.user.name was refused many times"
  priority: NOTICE
  source: k8s_audit
  mitre: [T1069, T1087]
  threat_matrix: [MS-TA9029]
  threshold: {count: 3, window: 1m, group_by: [ka.user.name]}
- rule: Exec then RBAC change
  desc: exec into a pod, then a binding change, by the same user
  output: "%ka.user.name changed RBAC after exec"
  priority: WARNING
  source: k8s_audit
  sequence:
    within: 10m
    by: [ka.user.name]
    steps:
      - condition: ka.target.subresource = exec
      - condition: ka.target.resource in (rolebindings, clusterrolebindings)
- rule: First secret read in a namespace
  desc: a user reads secrets in a namespace for the first time in 30 days
  condition: ka.target.resource = secrets and ka.verb in (get, list)
  output: "%ka.user.name read secrets in %ka.target.namespace"
  priority: INFO
  source: k8s_audit
  first_seen: {key: [ka.user.name, ka.target.namespace], baseline: 30d, learn: 1h}
- rule: Namespace sweep
  desc: one user touching many namespaces
  condition: ka.verb = list
  output: "%ka.user.name swept namespaces"
  priority: NOTICE
  source: k8s_audit
  threshold: {count: 3, window: 10m, group_by: [ka.user.name], distinct: ka.target.namespace, max_keys: 50}
- rule: Plain exec
  desc: a stateless rule beside them
  condition: ka.target.subresource = exec
  output: "exec by %ka.user.name"
  priority: NOTICE
  source: k8s_audit
  mitre: [T1609]
"""


def load(*texts: str) -> RuleSet:
    return load_ruleset([RuleSource(f"rules-{index}.yaml", text) for index, text in enumerate(texts)])


def test_the_forms_become_specs_and_stay_out_of_the_stateless_rules() -> None:
    ruleset = load(RULES)
    assert [rule.name for rule in ruleset.rules] == ["Plain exec"]
    kinds = {spec.name: type(spec) for spec in ruleset.stateful}
    assert kinds == {
        "Permission enumeration": ThresholdSpec,
        "Exec then RBAC change": SequenceSpec,
        "First secret read in a namespace": FirstSeenSpec,
        "Namespace sweep": ValueCountSpec,
    }
    threshold, sequence, first_seen, sweep = ruleset.stateful
    assert isinstance(threshold, ThresholdSpec) and (threshold.count, threshold.window_s) == (3, 60)
    assert threshold.mitre == ("T1069", "T1087") and threshold.threat_matrix == ("MS-TA9029",)
    assert isinstance(sequence, SequenceSpec) and (sequence.within_s, sequence.by) == (600, ("ka.user.name",))
    assert isinstance(first_seen, FirstSeenSpec) and (first_seen.baseline_s, first_seen.learn_s) == (30 * 86400, 3600)
    assert isinstance(sweep, ValueCountSpec) and (sweep.field, sweep.max_keys) == ("ka.target.namespace", 50)


def test_the_engine_runs_stateful_rules_beside_the_stateless_ones() -> None:
    engine = Engine(load(RULES), matching=Matching.FIRST)
    fired: list[tuple[str, str]] = []
    exec_event = {"objectRef": {"resource": "pods", "subresource": "exec", "namespace": "prod", "name": "web"}}
    bind_event = {"objectRef": {"resource": "clusterrolebindings", "name": "admin"}}
    events = [at(0, **exec_event)] + [at(10 + index, code=403) for index in range(3)] + [at(60, **bind_event)]
    for ctx in events:
        fired.extend((alert.rule, alert.audit_id) for alert in engine.detect(ctx))
    assert fired == [
        ("Plain exec", "id-jane-0"),
        ("Permission enumeration", "id-jane-12"),
        ("Exec then RBAC change", "id-jane-60"),
    ]


def test_alerts_carry_mitre_and_threat_matrix_ids() -> None:
    engine = Engine(load(RULES))
    alerts = [alert for index in range(3) for alert in engine.detect(at(index, code=403))]
    assert [(alert.mitre, alert.threat_matrix) for alert in alerts] == [(("T1069", "T1087"), ("MS-TA9029",))]
    (plain,) = engine.detect(at(5, objectRef={"resource": "pods", "subresource": "exec", "name": "x"}))
    assert plain.mitre == ("T1609",)


def test_min_priority_filters_stateful_rules_and_each_engine_has_its_own_state() -> None:
    ruleset = load(RULES)
    engine = Engine(ruleset, min_priority=Priority.WARNING)
    (detector,) = engine.detectors
    assert isinstance(detector, StatefulDetector)
    assert [spec.name for spec in detector.specs] == ["Exec then RBAC change"]
    assert Engine(ruleset).detectors[0] is not Engine(ruleset).detectors[0]


def test_disabled_stateful_rules_do_not_run() -> None:
    override = "- rule: Permission enumeration\n  enabled: false\n"
    assert "Permission enumeration" not in [spec.name for spec in load(RULES, override).stateful]


def rule_with(extra: str, condition: str = "ka.verb = get") -> str:
    return (
        f"- rule: R\n  desc: d\n  condition: {condition}\n  output: o\n  priority: INFO\n  source: k8s_audit\n" + extra
    )


@pytest.mark.parametrize(
    ("extra", "line", "message"),
    [
        ("  threshold:\n    count: 20\n    window: 5x\n", 9, "'window': invalid duration '5x'"),
        ("  threshold: {window: 5m}\n", 7, "'threshold' needs 'count'"),
        ("  threshold: {count: 0, window: 5m}\n", 7, "'count' must be a whole number of at least 1"),
        ("  threshold: {count: 2, window: 5m}\n  sequence: {within: 1m}\n", 1, "only one of threshold, sequence"),
        ("  threshold: {count: 2, window: 5m, group_by: [ka.nope]}\n", 7, "nonexistent field ka.nope"),
        ("  threshold: {count: 2, window: 5m, every: 1}\n", 7, "unknown key 'every' in 'threshold'"),
        ("  threshold: [count, 2]\n", 7, "'threshold' must be a mapping"),
        ("  sequence:\n    within: 10m\n    steps:\n      - condition: ka.verb = get\n", 10, "at least two steps"),
        ("  sequence:\n    within: 10m\n    steps:\n      - condition: ka.verb = get\n      - {}\n", 11, "each step"),
        ("  first_seen: {key: [ka.user.name], baseline: 0d}\n", 7, "'baseline': invalid duration '0d'"),
        ("  first_seen: {baseline: 30d}\n", 7, "'first_seen' needs 'key'"),
        ("  first_seen: {key: [ka.user.name], baseline: 30d, learn: soon}\n", 7, "'learn': invalid duration"),
    ],
)
def test_bad_specs_are_reported_at_their_line(extra: str, line: int, message: str) -> None:
    with pytest.raises(RuleLoadError) as caught:
        load(rule_with(extra))
    error = caught.value
    assert (error.source, error.line) == ("rules-0.yaml", line)
    assert message in error.message
    assert error.item == "rule 'R'"


def test_a_bad_step_condition_names_its_line_and_step() -> None:
    extra = (
        "  sequence:\n    within: 10m\n    steps:\n      - condition: ka.verb = get\n      - condition: ka.nope = 1\n"
    )
    with pytest.raises(RuleLoadError) as caught:
        load(rule_with(extra))
    assert (caught.value.line, caught.value.item) == (11, "rule 'R' step 2")
    assert "ka.nope" in caught.value.message


def test_step_conditions_use_the_files_macros_and_lists() -> None:
    macros = (
        "- list: binding_kinds\n  items: [rolebindings, clusterrolebindings]\n"
        "- macro: execs\n  condition: ka.target.subresource = exec\n"
    )
    steps = "      - condition: execs\n      - condition: ka.target.resource in (binding_kinds)\n"
    ruleset = load(macros, rule_with("  sequence:\n    within: 10m\n    steps:\n" + steps, "ka.verb exists"))
    (detector,) = ruleset.detectors()
    exec_event = at(0, objectRef={"resource": "pods", "subresource": "exec", "name": "w"})
    bind_event = at(1, objectRef={"resource": "rolebindings", "namespace": "a", "name": "b"})
    assert [alert.rule for ctx in (exec_event, bind_event) for alert in detector.detect(ctx)] == ["R"]


def test_indexed_conditions_select_the_same_events_as_the_full_condition() -> None:
    (detector,) = load(RULES).detectors()
    listing = [
        at(index, verb="list", objectRef={"resource": "secrets", "namespace": ns}) for index, ns in enumerate("abc")
    ]
    getting = [
        at(4000 + index, verb="get", objectRef={"resource": "secrets", "namespace": ns})
        for index, ns in enumerate("def")
    ]
    fired = [alert.rule for ctx in listing + getting for alert in detector.detect(ctx)]
    assert fired == ["Namespace sweep"] + ["First secret read in a namespace"] * 3


def test_a_detector_passed_to_the_engine_is_not_doubled_by_the_rule_sets_own() -> None:
    ruleset = load(RULES)
    mine = ruleset.detectors()
    engine = Engine(ruleset, detectors=mine)
    assert engine.detectors == tuple(mine)
    alerts = [alert for index in range(3) for alert in engine.detect(at(index, code=403))]
    assert [alert.rule for alert in alerts] == ["Permission enumeration"]


def test_stateful_alerts_take_the_engines_hostname_and_time_format() -> None:
    from kubetrail.detect import TimeFormat

    engine = Engine(load(RULES), hostname="node-1", time_format=TimeFormat.TIME)
    (alert,) = [alert for index in range(3) for alert in engine.detect(at(index, code=403))]
    assert alert.hostname == "node-1"
    assert alert.output.startswith("10:00:02.000000000")
    assert alert.output.endswith(": Notice jane was refused many times (count=3 window=1m)")
